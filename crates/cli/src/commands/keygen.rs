//! `keygen`: a fresh encryption key for `TOKEN_ENCRYPTION_KEYS`.

use cafe24_core::settings::{generate_key_entry, EncryptionKeys};
use cafe24_core::ConfigError;

use crate::args::KeygenArgs;

pub fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("k{}", chrono_date()));
    let entry = generate_key_entry(&id);
    // Round-trip through the parser so a bad --id is refused with the same rules as start-up.
    EncryptionKeys::parse(&entry).map_err(|reason| ConfigError::new("--id", reason))?;
    println!("{entry}");
    Ok(())
}

fn chrono_date() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}
