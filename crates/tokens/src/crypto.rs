//! Tokens at rest: AES-256-GCM under the current `TOKEN_ENCRYPTION_KEYS` key, a fresh random
//! nonce per value, and the mall id and token kind bound as associated data — so ciphertext
//! moved to another mall's row, or swapped between access and refresh, fails to decrypt.
//! Layout: `0x01 || nonce (12 bytes) || ciphertext+tag`; the key id is stored beside it.
//! Decrypted bytes live in a buffer wiped on drop; the token handed out fills its allocation
//! exactly, so turning it into a secret type moves it instead of leaving a copy behind.

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use cafe24_core::settings::EncryptionKeys;
use cafe24_core::MallId;
use rand::RngCore;
use zeroize::Zeroizing;

const FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("no key with id {0:?} is configured in TOKEN_ENCRYPTION_KEYS")]
    UnknownKey(String),
    #[error("stored ciphertext does not decrypt (wrong key, wrong mall, or tampered)")]
    Invalid,
}

#[derive(Clone, Debug)]
pub struct Sealer {
    keys: EncryptionKeys,
}

impl Sealer {
    pub fn new(keys: EncryptionKeys) -> Self {
        Self { keys }
    }

    pub fn current_key_id(&self) -> &str {
        self.keys.current().id()
    }

    /// Encrypts under the current key; returns the ciphertext (the key id is `current_key_id`).
    pub fn seal(&self, mall: &MallId, kind: TokenKind, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.seal_with_nonce(mall, kind, plaintext, nonce)
    }

    /// [`Sealer::seal`] with a given nonce: crate-internal, so the contract's test vectors
    /// (docs/contract.md) are computed by the code itself. A nonce must never be reused under
    /// one key; callers outside the crate always get a random one.
    pub(crate) fn seal_with_nonce(
        &self,
        mall: &MallId,
        kind: TokenKind,
        plaintext: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        let key = self.keys.current();
        let cipher = cipher(key.expose_secret());
        let aad = associated_data(mall, kind);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a short value cannot fail"));
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(
        &self,
        mall: &MallId,
        kind: TokenKind,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<String, CryptoError> {
        let key = self
            .keys
            .by_id(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let (&format, rest) = sealed.split_first().ok_or(CryptoError::Invalid)?;
        if format != FORMAT || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Invalid);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let aad = associated_data(mall, kind);
        let mut plain = Zeroizing::new(body.to_vec());
        cipher(key.expose_secret())
            .decrypt_in_place(Nonce::from_slice(nonce), &aad, &mut *plain)
            .map_err(|_| CryptoError::Invalid)?;
        // A copy of exactly the token's length; `plain` (with the tag's spare room) is wiped.
        std::str::from_utf8(&plain)
            .map(str::to_owned)
            .map_err(|_| CryptoError::Invalid)
    }
}

fn cipher(key: &[u8]) -> Aes256Gcm {
    Aes256Gcm::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("keys are validated to 32 bytes"))
}

fn associated_data(mall: &MallId, kind: TokenKind) -> Vec<u8> {
    let kind = match kind {
        TokenKind::Access => "access",
        TokenKind::Refresh => "refresh",
    };
    format!("cafe24-oauth/v1/{}/{kind}", mall.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cafe24_core::settings::generate_key_entry;

    fn sealer(entries: &str) -> Sealer {
        Sealer::new(EncryptionKeys::parse(entries).expect("keys"))
    }

    fn mall(m: &str) -> MallId {
        MallId::parse(m).expect("mall")
    }

    #[test]
    fn sealed_tokens_open_only_for_their_mall_and_kind() {
        let s = sealer(&generate_key_entry("k1"));
        let sealed = s.seal(&mall("shop1"), TokenKind::Access, "token-value");
        assert!(
            !sealed.windows(11).any(|w| w == b"token-value"),
            "plaintext visible"
        );
        assert_eq!(
            s.open(&mall("shop1"), TokenKind::Access, "k1", &sealed)
                .as_deref(),
            Ok("token-value")
        );
        assert_eq!(
            s.open(&mall("shop2"), TokenKind::Access, "k1", &sealed),
            Err(CryptoError::Invalid)
        );
        assert_eq!(
            s.open(&mall("shop1"), TokenKind::Refresh, "k1", &sealed),
            Err(CryptoError::Invalid)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            s.open(&mall("shop1"), TokenKind::Access, "k1", &tampered),
            Err(CryptoError::Invalid)
        );
        assert_eq!(
            s.open(&mall("shop1"), TokenKind::Access, "k1", &[]),
            Err(CryptoError::Invalid)
        );
    }

    // docs/contract.md §7.4: the published test vectors. Change them only with the contract.
    const VECTOR_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const VECTOR_ACCESS: &str =
        "01a0a1a2a3a4a5a6a7a8a9aaab877b1f4836b82fcb0d0ee2bd2a4b2095e3dfa17cfc429f9ceb615dcc0e2a";
    const VECTOR_REFRESH: &str =
        "01a0a1a2a3a4a5a6a7a8a9aaab947d1a5f20b86a92160aecb66957f1126e634206794df784e5094c62e690a8";

    fn vector_nonce() -> [u8; NONCE_LEN] {
        std::array::from_fn(|i| 0xa0 + u8::try_from(i).unwrap_or_default())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn contract_vector_ciphertext_is_exactly_the_documented_bytes() {
        let s = sealer(VECTOR_KEYS);
        assert_eq!(s.current_key_id(), "k1");
        let access = s.seal_with_nonce(
            &mall("shop1"),
            TokenKind::Access,
            "access-token-1",
            vector_nonce(),
        );
        assert_eq!(hex(&access), VECTOR_ACCESS);
        let refresh = s.seal_with_nonce(
            &mall("shop1"),
            TokenKind::Refresh,
            "refresh-token-1",
            vector_nonce(),
        );
        assert_eq!(hex(&refresh), VECTOR_REFRESH);
        assert_eq!(
            associated_data(&mall("shop1"), TokenKind::Access),
            b"cafe24-oauth/v1/shop1/access"
        );
        assert_eq!(
            s.open(&mall("shop1"), TokenKind::Access, "k1", &access)
                .as_deref(),
            Ok("access-token-1")
        );
        // The same bytes under another mall, the other kind or another format byte do not open.
        assert_eq!(
            s.open(&mall("shop2"), TokenKind::Access, "k1", &access),
            Err(CryptoError::Invalid)
        );
        assert_eq!(
            s.open(&mall("shop1"), TokenKind::Refresh, "k1", &access),
            Err(CryptoError::Invalid)
        );
        let mut reformatted = access.clone();
        reformatted[0] = 2;
        assert_eq!(
            s.open(&mall("shop1"), TokenKind::Access, "k1", &reformatted),
            Err(CryptoError::Invalid)
        );
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let s = sealer(&generate_key_entry("k1"));
        assert_ne!(
            s.seal(&mall("a"), TokenKind::Access, "x"),
            s.seal(&mall("a"), TokenKind::Access, "x")
        );
    }

    #[test]
    fn old_keys_still_open_after_rotation_and_unknown_keys_are_named() {
        let old = generate_key_entry("k1");
        let before = sealer(&old);
        let sealed = before.seal(&mall("a"), TokenKind::Refresh, "r");
        let after = sealer(&format!("{},{old}", generate_key_entry("k2")));
        assert_eq!(after.current_key_id(), "k2");
        assert_eq!(
            after
                .open(&mall("a"), TokenKind::Refresh, "k1", &sealed)
                .as_deref(),
            Ok("r")
        );
        assert_eq!(
            after.open(&mall("a"), TokenKind::Refresh, "k9", &sealed),
            Err(CryptoError::UnknownKey("k9".into()))
        );
    }

    #[test]
    fn an_opened_token_fills_its_buffer_exactly() {
        // A plaintext with spare capacity is copied when it becomes a secret (a boxed str),
        // and the old buffer is freed without being wiped.
        let s = sealer(&generate_key_entry("k1"));
        let sealed = s.seal(&mall("shop1"), TokenKind::Refresh, "refresh-token-value");
        let opened = s
            .open(&mall("shop1"), TokenKind::Refresh, "k1", &sealed)
            .expect("opens");
        assert_eq!(opened, "refresh-token-value");
        assert_eq!(opened.capacity(), opened.len());
    }
}
