//! Tokens at rest, written from the contract: AES-256-GCM under the `TOKEN_ENCRYPTION_KEYS`
//! key named by the row's `key_id`; the stored value is `0x01 || nonce (12 bytes) ||
//! ciphertext+tag`, and the associated data is `cafe24-oauth/v1/{mall_id}/{access|refresh}`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

const FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Which column a ciphertext comes from; it is bound into the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// One `TOKEN_ENCRYPTION_KEYS` entry the kit generated: an id and 32 random bytes.
#[derive(Clone)]
pub struct KitKey {
    pub id: String,
    bytes: [u8; 32],
}

impl std::fmt::Debug for KitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KitKey({}, [redacted])", self.id)
    }
}

impl KitKey {
    pub fn generate(id: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self {
            id: id.to_owned(),
            bytes,
        }
    }

    /// The entry as the environment carries it: `id:BASE64`.
    pub fn entry(&self) -> String {
        format!("{}:{}", self.id, self.base64())
    }

    pub fn base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub fn hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The plaintext of a stored value, or why it does not open.
    pub fn open(&self, mall: &str, kind: TokenKind, sealed: &[u8]) -> Result<String, String> {
        let (&format, rest) = sealed.split_first().ok_or("the value is empty")?;
        if format != FORMAT {
            return Err(format!("format byte is {format:#04x}, not 0x01"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(format!("only {} bytes after the format byte", rest.len()));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let aad = associated_data(mall, kind);
        let cipher = Aes256Gcm::new_from_slice(&self.bytes)
            .map_err(|_| "the key is not 32 bytes".to_owned())?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                format!(
                    "AES-256-GCM refuses it with associated data {:?}",
                    String::from_utf8_lossy(&aad)
                )
            })?;
        String::from_utf8(plain).map_err(|_| "the plaintext is not UTF-8".to_owned())
    }

    /// Seals like an implementation does (used to check `open` against itself in tests).
    pub fn seal(&self, mall: &str, kind: TokenKind, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(mall, kind);
        let Ok(cipher) = Aes256Gcm::new_from_slice(&self.bytes) else {
            unreachable!("the key is 32 bytes")
        };
        let Ok(sealed) = cipher.encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        ) else {
            unreachable!("AES-GCM encryption of a short value cannot fail")
        };
        let mut out = vec![FORMAT];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }
}

fn associated_data(mall: &str, kind: TokenKind) -> Vec<u8> {
    format!("cafe24-oauth/v1/{mall}/{}", kind.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_for_its_mall_and_kind() {
        let key = KitKey::generate("k1");
        let sealed = key.seal("shop1", TokenKind::Access, "token");
        assert_eq!(
            key.open("shop1", TokenKind::Access, &sealed).as_deref(),
            Ok("token")
        );
        assert!(key.open("shop2", TokenKind::Access, &sealed).is_err());
        assert!(key.open("shop1", TokenKind::Refresh, &sealed).is_err());
        assert!(key.open("shop1", TokenKind::Access, &sealed[..20]).is_err());
        assert!(!format!("{key:?}").contains(&key.base64()));
    }
}
