//! `MallId`: the one identifier that is pasted into a host name, so it is parsed strictly.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest mall id accepted. Cafe24 ids are short (4–16 characters); 50 leaves room while
/// keeping the value a single, short DNS label.
pub const MAX_MALL_ID_LEN: usize = 50;

/// A Cafe24 mall id: lowercase ASCII letters and digits, `-` and `_` tolerated after the first
/// character (but not `--` as the third and fourth, DNS's mark of an encoded name), 1 to
/// [`MAX_MALL_ID_LEN`] long. Anything else (dots, slashes, `@`, `%`,
/// whitespace, uppercase, non-ASCII) is refused, so no input can steer
/// `https://{mall_id}.cafe24api.com` to another host.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MallId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MallIdError {
    #[error("mall id is empty")]
    Empty,
    #[error("mall id is longer than {MAX_MALL_ID_LEN} characters")]
    TooLong,
    #[error("mall id must start with a lowercase letter or a digit")]
    BadStart,
    #[error("mall id may contain only lowercase letters, digits, '-' and '_'")]
    BadCharacter,
    /// `ab--…`: DNS reserves hyphens in the third and fourth place for encoded international
    /// names (`xn--…`), which a URL parser decodes — and rejects when the encoding is invalid.
    #[error("mall id must not have '--' as its third and fourth characters")]
    Reserved,
}

impl MallId {
    pub fn parse(raw: &str) -> Result<Self, MallIdError> {
        let first = raw.bytes().next().ok_or(MallIdError::Empty)?;
        if raw.len() > MAX_MALL_ID_LEN {
            return Err(MallIdError::TooLong);
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(if first.is_ascii() {
                MallIdError::BadStart
            } else {
                MallIdError::BadCharacter
            });
        }
        let allowed =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        if !raw.bytes().all(allowed) {
            return Err(MallIdError::BadCharacter);
        }
        if raw.get(2..4) == Some("--") {
            return Err(MallIdError::Reserved);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MallId {
    type Err = MallIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MallId {
    type Error = MallIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MallId> for String {
    fn from(m: MallId) -> Self {
        m.0
    }
}

impl AsRef<str> for MallId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MallId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_mall_ids_are_accepted() {
        for ok in [
            "yourmall",
            "a",
            "mall01",
            "my-shop",
            "my_shop",
            "0mall",
            &"a".repeat(50),
        ] {
            assert_eq!(
                MallId::parse(ok).map(|m| m.to_string()),
                Ok(ok.to_string()),
                "{ok}"
            );
        }
    }

    #[test]
    fn hostile_mall_ids_are_rejected() {
        let hostile = [
            "",
            "evil.com",
            "a.b",
            "mall/",
            "../x",
            "a@b",
            "mall%2e",
            "mall ",
            " mall",
            "mal l",
            "MALL",
            "Mall",
            "mäll",
            "ｍａｌｌ",
            "-mall",
            "_mall",
            "mall\n",
            "mall\0",
            "mall:80",
            // Found by fuzzing (fuzz/fuzz_targets/mall_id.rs): `xn--` labels are decoded as
            // international names by URL parsers, and invalid ones make no URL at all.
            "xn---",
            "xn--mll-hoa",
            "ab--cd",
            "mall?x",
            "mall#x",
            "a\\b",
        ];
        for bad in hostile {
            assert!(MallId::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert_eq!(MallId::parse(&"a".repeat(51)), Err(MallIdError::TooLong));
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<MallId>("\"okmall\"").is_ok());
        assert!(serde_json::from_str::<MallId>("\"evil.com\"").is_err());
    }
}
