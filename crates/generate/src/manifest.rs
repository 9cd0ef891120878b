//! What the last run generated, kept in `{output_dir}/.cafe24-oauth/`: the generator version, the
//! normalized task, and per file the content it was generated from (the base of a three-way
//! merge) with its hash. A file on disk equal to its base was not edited since.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The folder, relative to `output_dir`.
pub const DIR: &str = ".cafe24-oauth";
pub const FILE: &str = ".cafe24-oauth/manifest.json";
pub const BASE_DIR: &str = ".cafe24-oauth/base";

/// The last run: its manifest and, per file, the base content it recorded.
pub type Previous = (Manifest, BTreeMap<String, String>);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub generator_version: String,
    pub task: serde_json::Value,
    pub files: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// sha256 of the base content.
    pub sha256: String,
}

pub fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a file's base content is kept, relative to `output_dir`.
pub fn base_path(file: &str) -> String {
    format!("{BASE_DIR}/{file}")
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path} cannot be read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a manifest this generator wrote: {message}")]
    Invalid { path: String, message: String },
}

impl Manifest {
    /// The manifest and base contents under `output`, or `None` on a first run.
    pub fn load(output: &Path) -> Result<Option<Previous>, ManifestError> {
        let path = output.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ManifestError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| ManifestError::Invalid {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let mut bases = BTreeMap::new();
        for (file, entry) in &manifest.files {
            let base_file = output.join(base_path(file));
            // A missing or altered base is not fatal: the file is then treated as edited.
            if let Ok(base) = std::fs::read_to_string(&base_file) {
                if sha256(&base) == entry.sha256 {
                    bases.insert(file.clone(), base);
                }
            }
        }
        Ok(Some((manifest, bases)))
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}
