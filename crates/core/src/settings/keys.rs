//! `TOKEN_ENCRYPTION_KEYS`: `id1:BASE64_OF_32_BYTES[,id2:…]` — the first key encrypts, all
//! decrypt, so keys can be rotated without downtime.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};

pub const KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    bytes: SecretSlice<u8>,
}

impl EncryptionKey {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw 32 key bytes. Never log them.
    pub fn expose_secret(&self) -> &[u8] {
        self.bytes.expose_secret()
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({}, [redacted])", self.id)
    }
}

/// An ordered, non-empty set of keys with unique ids.
#[derive(Clone, Debug)]
pub struct EncryptionKeys(Vec<EncryptionKey>);

impl EncryptionKeys {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys: Vec<EncryptionKey> = Vec::new();
        for (n, entry) in raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (id, b64) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry {} must look like id:BASE64", n + 1))?;
            let id_ok = !id.is_empty()
                && id.len() <= 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok {
                return Err(format!(
                    "entry {}: key id must be 1-32 letters, digits, '-' or '_'",
                    n + 1
                ));
            }
            let bytes = STANDARD
                .decode(b64)
                .map_err(|_| format!("key {id}: not valid base64"))?;
            if bytes.len() != KEY_LEN {
                return Err(format!(
                    "key {id}: must decode to {KEY_LEN} bytes, not {}",
                    bytes.len()
                ));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(format!("key id {id} appears twice"));
            }
            keys.push(EncryptionKey {
                id: id.to_owned(),
                bytes: SecretSlice::from(bytes),
            });
        }
        if keys.is_empty() {
            return Err("no keys given".into());
        }
        Ok(Self(keys))
    }

    /// The key new ciphertext is written with.
    pub fn current(&self) -> &EncryptionKey {
        &self.0[0]
    }

    pub fn by_id(&self, id: &str) -> Option<&EncryptionKey> {
        self.0.iter().find(|k| k.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &EncryptionKey> {
        self.0.iter()
    }
}

/// A fresh `TOKEN_ENCRYPTION_KEYS` entry: `id:BASE64` of 32 random bytes.
pub fn generate_key_entry(id: &str) -> String {
    let mut bytes = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{id}:{}", STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_entries_parse_and_first_key_is_current() {
        let raw = format!("{},{}", generate_key_entry("k2"), generate_key_entry("k1"));
        let keys = EncryptionKeys::parse(&raw).expect("parse");
        assert_eq!(keys.current().id(), "k2");
        assert!(keys.by_id("k1").is_some());
        assert_eq!(keys.current().expose_secret().len(), KEY_LEN);
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_material() {
        let short = format!("k1:{}", STANDARD.encode([7u8; 16]));
        let dup = format!("{},{}", generate_key_entry("a"), generate_key_entry("a"));
        for bad in [
            "",
            "k1",
            "k1:@@@",
            short.as_str(),
            dup.as_str(),
            ":AAAA",
            "k 1:AAAA",
        ] {
            let err = EncryptionKeys::parse(bad).err().unwrap_or_default();
            assert!(!err.is_empty(), "{bad:?} must be refused");
        }
        let keys = EncryptionKeys::parse(&generate_key_entry("k1")).expect("parse");
        let b64 = STANDARD.encode(keys.current().expose_secret());
        assert!(!format!("{keys:?}").contains(&b64));
    }
}
