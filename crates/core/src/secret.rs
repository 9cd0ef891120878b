//! Secret types. `Debug` and `Display` print `[redacted]`, there is no `Serialize`, and the one
//! way out is `expose_secret()` — easy to grep for in review. Each wipes its memory on drop
//! (`ZeroizeOnDrop`), and building one leaves no unwiped copy of the value behind.

use secrecy::{ExposeSecret, SecretString};
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(into_secret(value.into()))
            }

            /// The secret value. Never log or format it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[redacted]")
            }
        }

        /// The inner `SecretString` wipes its buffer when dropped.
        impl ZeroizeOnDrop for $name {}
    };
}

/// Moves `value` into a secret. A `String` with spare capacity is copied when it is boxed (the
/// allocation shrinks), and the old buffer would be freed as it is; that one is wiped here.
fn into_secret(mut value: String) -> SecretString {
    if value.len() == value.capacity() {
        return SecretString::from(value);
    }
    let secret = SecretString::from(value.as_str());
    value.zeroize();
    secret
}

secret_type!(
    /// The app's client secret: authenticates token calls and keys the launch `hmac`.
    ClientSecret
);
secret_type!(
    /// The HMAC key for the OAuth `state` (`EXPECTED_STATE_SECRET`).
    StateKey
);
secret_type!(
    /// A one-minute, single-use authorization code.
    AuthorizationCode
);
secret_type!(
    /// A Cafe24 access token (two hours).
    AccessToken
);
secret_type!(
    /// A Cafe24 refresh token (fourteen days, rotated on every use).
    RefreshToken
);
secret_type!(
    /// A connection string that may carry a password.
    DatabaseUrl
);
secret_type!(
    /// A password (for example `PGPASSWORD`).
    Password
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let value = "s3cr3t-value-123";
        let shown = [
            format!("{:?}", ClientSecret::new(value)),
            format!("{}", ClientSecret::new(value)),
            format!("{:?}", StateKey::new(value)),
            format!("{:?}", AuthorizationCode::new(value)),
            format!("{:#?}", AccessToken::new(value)),
            format!("{:?}", RefreshToken::new(value)),
            format!(
                "{:?}",
                DatabaseUrl::new(format!("postgres://u:{value}@h/db"))
            ),
            format!("{:?}", Some(Password::new(value))),
        ];
        for s in &shown {
            assert!(!s.contains(value), "leaked: {s}");
            assert!(s.contains("redacted"), "not marked as redacted: {s}");
        }
        assert_eq!(ClientSecret::new(value).expose_secret(), value);
    }

    #[test]
    fn a_secret_built_from_a_roomy_string_keeps_its_value() {
        let mut roomy = String::with_capacity(64);
        roomy.push_str("refresh-token-value");
        assert_eq!(
            RefreshToken::new(roomy).expose_secret(),
            "refresh-token-value"
        );
        assert_eq!(AccessToken::new("exact").expose_secret(), "exact");
    }

    #[test]
    fn secrets_wipe_their_memory_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<ClientSecret>();
        wiped_on_drop::<StateKey>();
        wiped_on_drop::<AuthorizationCode>();
        wiped_on_drop::<AccessToken>();
        wiped_on_drop::<RefreshToken>();
        wiped_on_drop::<DatabaseUrl>();
        wiped_on_drop::<Password>();
    }
}
