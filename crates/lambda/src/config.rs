//! The Lambda-only settings: which handler this function runs, and the PostgreSQL-only rule.

use std::fmt;
use std::sync::Arc;

use cafe24_core::settings::{ConfigError, DatabaseSettings, Source};
use cafe24_store::Store;

use crate::InitError;

/// Selects the handler: `http` (default), `exchange` or `refresh`.
pub const HANDLER_VAR: &str = "CAFE24_LAMBDA_HANDLER";
/// How long one `exchange` invocation keeps listening for new codes after its first pass
/// (seconds; default: until shortly before its deadline). 0: one pass and return.
pub const EXCHANGE_LISTEN_VAR: &str = "CAFE24_LAMBDA_EXCHANGE_LISTEN_SECS";
/// `true` applies pending migrations at init (default `false`: a callback function whose
/// database is down must still start, and answer 503).
pub const MIGRATE_VAR: &str = "CAFE24_LAMBDA_MIGRATE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Http,
    Exchange,
    Refresh,
}

impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handler::Http => "http",
            Handler::Exchange => "exchange",
            Handler::Refresh => "refresh",
        })
    }
}

#[derive(Debug, Clone)]
pub struct LambdaSettings {
    pub handler: Handler,
    pub migrate: bool,
    pub database: DatabaseSettings,
    /// `None`: listen until shortly before the invocation's deadline.
    pub exchange_listen: Option<std::time::Duration>,
}

impl LambdaSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        let handler = src.parse_or(HANDLER_VAR, Handler::Http, |raw| match raw {
            "http" => Ok(Handler::Http),
            "exchange" => Ok(Handler::Exchange),
            "refresh" => Ok(Handler::Refresh),
            _ => Err("must be http, exchange or refresh"),
        })?;
        let database = DatabaseSettings::load(src)?;
        if !database.is_postgres() {
            // Name what the operator must set: the variable that chose SQLite, or DATABASE_URL.
            let reason = if src.get("DATABASE_URL").is_some() {
                "is a SQLite URL; Lambda needs PostgreSQL (postgres://…)"
            } else {
                "is not set (nor PGHOST…); Lambda needs PostgreSQL, SQLite is not supported"
            };
            return Err(ConfigError::new("DATABASE_URL", reason));
        }
        let exchange_listen = src.parse_or(EXCHANGE_LISTEN_VAR, None, |raw| {
            raw.parse::<u64>()
                .ok()
                .filter(|s| *s <= 900)
                .map(|s| Some(std::time::Duration::from_secs(s)))
                .ok_or("must be a whole number of seconds from 0 to 900")
        })?;
        Ok(Self {
            handler,
            migrate: src.bool_or(MIGRATE_VAR, false)?,
            database,
            exchange_listen,
        })
    }

    /// The store, connected lazily (a database that is down now is retried on each use).
    pub(crate) async fn open_store(&self) -> Result<Arc<dyn Store>, InitError> {
        // An invocation may be frozen as soon as it answers: a notification left for later
        // might never be sent, so the insert trigger notifies within the commit.
        let database = DatabaseSettings {
            coalesce_code_notifications: false,
            ..self.database.clone()
        };
        let store = cafe24_store::connect(&database)
            .await
            .map_err(|e| InitError::startup(format!("opening the database: {e}")))?;
        if self.migrate {
            store
                .migrate()
                .await
                .map_err(|e| InitError::startup(format!("applying migrations: {e}")))?;
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<LambdaSettings, ConfigError> {
        LambdaSettings::load(&Source::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn sqlite_is_refused_naming_the_variable() {
        for pairs in [
            &[("DATABASE_URL", "sqlite:/tmp/x.sqlite3")][..],
            &[][..],
            &[("CAFE24_SQLITE_PATH", "/tmp/x.sqlite3")][..],
        ] {
            let err = load(pairs).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.starts_with("DATABASE_URL: ")),
                "{pairs:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn handler_defaults_to_http_and_rejects_unknown_names() {
        let pg = ("DATABASE_URL", "postgres://u@h/db");
        assert_eq!(load(&[pg]).map(|s| s.handler).ok(), Some(Handler::Http));
        assert_eq!(
            load(&[pg, (HANDLER_VAR, "refresh")])
                .map(|s| s.handler)
                .ok(),
            Some(Handler::Refresh)
        );
        assert_eq!(
            load(&[pg, (HANDLER_VAR, "worker")])
                .err()
                .map(|e| e.variable().to_owned()),
            Some(HANDLER_VAR.to_owned())
        );
    }

    #[test]
    fn libpq_variables_are_postgres() {
        let s = load(&[("PGHOST", "db.internal"), ("PGPASSWORD", "pw")]).expect("load");
        assert!(s.database.is_postgres());
        assert!(!s.migrate);
    }
}
