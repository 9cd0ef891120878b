//! The contract's formats, written again from their description (not imported from the
//! runtime), so the kit is an independent check: the signed state, the launch `hmac`, and the
//! ciphertext of tokens at rest.

pub mod crypto;
pub mod launch;
pub mod state;
