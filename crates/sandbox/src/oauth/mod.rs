//! The OAuth endpoints of a mall: authorize (with its consent page), token and revoke.

pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod revoke;
pub mod token;
