//! OAuth scopes: `mall.read_product`, `mall.write_order`, … parsed from comma- or
//! space-separated lists (Cafe24's docs say spaces, its samples send commas).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {0:?}: expected mall.read_X or mall.write_X")]
pub struct ScopeError(String);

impl Scope {
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        let rest = raw
            .strip_prefix("mall.read_")
            .or_else(|| raw.strip_prefix("mall.write_"));
        match rest {
            Some(name)
                if !name.is_empty()
                    && name.len() <= 40
                    && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') =>
            {
                Ok(Self(raw.to_owned()))
            }
            // Keep only a short, printable prefix of a rejected value in the error.
            _ => Err(ScopeError(
                raw.chars().take(60).filter(|c| !c.is_control()).collect(),
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scope {
    type Error = ScopeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({})", self.0)
    }
}

/// A non-empty, duplicate-free, ordered list of scopes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses a comma- and/or space-separated list.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        let mut out: Vec<Scope> = Vec::new();
        for part in raw.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
            let scope = Scope::parse(part)?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        if out.is_empty() {
            return Err(ScopeError(String::new()));
        }
        Ok(Self(out))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The comma-separated form Cafe24's samples send.
    pub fn to_comma_separated(&self) -> String {
        self.0
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_and_space_lists_parse_to_the_same_scopes() {
        let a =
            Scopes::parse("mall.read_product,mall.write_product").map(|s| s.to_comma_separated());
        let b =
            Scopes::parse("mall.read_product mall.write_product").map(|s| s.to_comma_separated());
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Ok("mall.read_product,mall.write_product"));
    }

    #[test]
    fn bad_scopes_are_rejected() {
        for bad in [
            "",
            ",",
            "read_product",
            "mall.delete_x",
            "mall.read_",
            "mall.read_x y=1",
            "mall.read_ü",
        ] {
            assert!(Scopes::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Scopes::parse("mall.read_x;drop").is_err());
        assert!(Scope::parse("mall.read_customer_Identifier").is_ok());
    }
}
