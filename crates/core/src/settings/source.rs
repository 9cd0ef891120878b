//! Where configuration values come from: the process environment over an optional flat TOML
//! file whose keys are the same variable names (case-insensitive).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use super::ConfigError;

/// Name of the variable that points at an optional TOML file.
pub const CONFIG_FILE_VAR: &str = "CAFE24_CONFIG_FILE";

#[derive(Default, Clone)]
pub struct Source {
    values: BTreeMap<String, String>,
}

impl Source {
    /// The environment, over the TOML file named by `file` or by `CAFE24_CONFIG_FILE`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let named = env.get(CONFIG_FILE_VAR).map(std::path::PathBuf::from);
        let mut source = match file.map(Path::to_path_buf).or(named) {
            Some(path) => Self::from_toml_file(&path)?,
            None => Self::default(),
        };
        source.values.extend(env);
        Ok(source)
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let err = |reason: String| ConfigError::new(CONFIG_FILE_VAR, reason);
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let table = toml::Table::from_str(&text).map_err(|e| {
            err(format!(
                "{} is not valid TOML: {}",
                path.display(),
                e.message()
            ))
        })?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => {
                    let mut parts = Vec::new();
                    for item in items {
                        match item {
                            toml::Value::String(s) => parts.push(s),
                            _ => return Err(err(format!("{key}: arrays may hold only strings"))),
                        }
                    }
                    parts.join(",")
                }
                _ => {
                    return Err(err(format!(
                        "{key}: expected a string, number, boolean or list"
                    )))
                }
            };
            values.insert(key.to_ascii_uppercase(), text);
        }
        Ok(Self { values })
    }

    /// A value, with surrounding whitespace removed; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, "not set (required)"))
    }

    /// Parses a value with `parse`, or returns `default` when unset.
    pub fn parse_or<T, E: std::fmt::Display>(
        &self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse(raw).map_err(|e| ConfigError::new(name, e.to_string())),
        }
    }

    pub fn number_or(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        self.parse_or(name, default, |raw| match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        })
    }

    pub fn bool_or(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.parse_or(name, default, |raw| {
            match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err("must be true or false"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_file_values_are_read_and_environment_wins() {
        let dir = std::env::temp_dir().join(format!("cafe24-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.toml");
        std::fs::write(&path, "cafe24_client_id = \"from-file\"\nCAFE24_SCOPES = [\"mall.read_product\", \"mall.read_store\"]\nHTTP_REQUEST_TIMEOUT_SECS = 7\n")
            .expect("write");
        let file = Source::from_toml_file(&path).expect("parse");
        assert_eq!(file.get("CAFE24_CLIENT_ID"), Some("from-file"));
        assert_eq!(
            file.get("CAFE24_SCOPES"),
            Some("mall.read_product,mall.read_store")
        );
        assert_eq!(
            file.number_or("HTTP_REQUEST_TIMEOUT_SECS", 10, 1, 60),
            Ok(7)
        );
        std::fs::write(&path, "x = [1]").expect("write");
        assert!(Source::from_toml_file(&path).is_err());
        std::fs::write(&path, "not toml at all ===").expect("write");
        let err = Source::from_toml_file(&path).err().expect("error");
        assert_eq!(err.variable(), CONFIG_FILE_VAR);
    }
}
