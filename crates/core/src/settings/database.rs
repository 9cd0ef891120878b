//! Which database to use: `DATABASE_URL`, else the libpq variables (`PGHOST PGPORT PGUSER
//! PGPASSWORD PGDATABASE`, as the serverless spec names them), else an embedded SQLite file.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Source};
use crate::secret::{DatabaseUrl, Password};

pub const DEFAULT_SQLITE_PATH: &str = "cafe24-oauth.sqlite3";

#[derive(Debug, Clone)]
pub enum DatabaseKind {
    /// A `postgres://` or `postgresql://` URL.
    PostgresUrl(DatabaseUrl),
    /// Connection parameters from the libpq variables.
    PostgresParams {
        host: String,
        port: u16,
        user: String,
        password: Option<Password>,
        dbname: String,
        sslmode: Option<String>,
    },
    /// An embedded SQLite database file.
    Sqlite(PathBuf),
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub kind: DatabaseKind,
    pub max_connections: u32,
    /// How long a request waits for a connection before the database counts as unreachable.
    pub acquire_timeout: Duration,
    /// PostgreSQL: connections reserved for the request path (the callback, webhook intake,
    /// readiness) out of `max_connections`; background work never takes them.
    pub reserved_connections: u32,
    /// PostgreSQL: connections that hold per-mall refresh locks, a pool of their own so a
    /// refresh waiting on Cafe24 never holds a connection the callback needs.
    pub lock_connections: u32,
    /// PostgreSQL: wake other processes' exchange workers with coalesced notifications sent
    /// after each code's insert commits, instead of the insert trigger's (which serialises
    /// commits). Not an environment setting: on for long-running processes; off where a process
    /// may be frozen right after answering (Lambda).
    pub coalesce_code_notifications: bool,
}

impl DatabaseSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        let kind = if let Some(url) = src.get("DATABASE_URL") {
            parse_url(url)?
        } else if ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"]
            .iter()
            .any(|v| src.get(v).is_some())
        {
            let user = src.get("PGUSER").unwrap_or("postgres").to_owned();
            DatabaseKind::PostgresParams {
                host: src.get("PGHOST").unwrap_or("localhost").to_owned(),
                port: src.parse_or("PGPORT", 5432, |raw| {
                    raw.parse::<u16>().map_err(|_| "must be a port number")
                })?,
                password: src.get("PGPASSWORD").map(Password::new),
                dbname: src.get("PGDATABASE").unwrap_or(&user).to_owned(),
                sslmode: src.get("PGSSLMODE").map(str::to_owned),
                user,
            }
        } else {
            DatabaseKind::Sqlite(PathBuf::from(
                src.get("CAFE24_SQLITE_PATH").unwrap_or(DEFAULT_SQLITE_PATH),
            ))
        };
        let max_connections =
            u32::try_from(src.number_or("DATABASE_MAX_CONNECTIONS", 10, 1, 1000)?).unwrap_or(10);
        let reserved_connections = u32::try_from(src.number_or(
            "DATABASE_RESERVED_CONNECTIONS",
            u64::from(max_connections / 4).max(1),
            0,
            999,
        )?)
        .unwrap_or(1);
        if max_connections > 1 && reserved_connections >= max_connections {
            return Err(ConfigError::new(
                "DATABASE_RESERVED_CONNECTIONS",
                "must be less than DATABASE_MAX_CONNECTIONS (background work needs one)",
            ));
        }
        Ok(Self {
            kind,
            max_connections,
            reserved_connections,
            lock_connections: u32::try_from(src.number_or(
                "DATABASE_LOCK_CONNECTIONS",
                4,
                1,
                1000,
            )?)
            .unwrap_or(4),
            acquire_timeout: Duration::from_secs(src.number_or(
                "DATABASE_ACQUIRE_TIMEOUT_SECS",
                5,
                1,
                120,
            )?),
            coalesce_code_notifications: true,
        })
    }

    pub fn is_postgres(&self) -> bool {
        !matches!(self.kind, DatabaseKind::Sqlite(_))
    }
}

fn parse_url(raw: &str) -> Result<DatabaseKind, ConfigError> {
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        // Parsed here only to fail early; the value itself is kept secret (it may hold a password).
        url::Url::parse(raw)
            .map_err(|_| ConfigError::new("DATABASE_URL", "is not a valid postgres:// URL"))?;
        return Ok(DatabaseKind::PostgresUrl(DatabaseUrl::new(raw)));
    }
    if let Some(path) = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "sqlite: URL names no file",
            ));
        }
        return Ok(DatabaseKind::Sqlite(PathBuf::from(path)));
    }
    Err(ConfigError::new(
        "DATABASE_URL",
        "must start with postgres://, postgresql:// or sqlite:",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_configured_means_embedded_sqlite() {
        let db = DatabaseSettings::load(&Source::default()).expect("load");
        assert!(
            matches!(db.kind, DatabaseKind::Sqlite(ref p) if p == &PathBuf::from(DEFAULT_SQLITE_PATH))
        );
    }

    #[test]
    fn libpq_variables_select_postgres() {
        let src = Source::from_pairs([
            ("PGHOST", "db.internal"),
            ("PGUSER", "app"),
            ("PGPASSWORD", "pw"),
        ]);
        let db = DatabaseSettings::load(&src).expect("load");
        match db.kind {
            DatabaseKind::PostgresParams {
                host,
                port,
                user,
                dbname,
                ..
            } => {
                assert_eq!(
                    (host.as_str(), port, user.as_str(), dbname.as_str()),
                    ("db.internal", 5432, "app", "app")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!format!("{:?}", DatabaseSettings::load(&src)).contains("pw\""));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let bad_url = Source::from_pairs([("DATABASE_URL", "mysql://x")]);
        assert_eq!(
            DatabaseSettings::load(&bad_url)
                .err()
                .map(|e| e.variable().to_owned()),
            Some("DATABASE_URL".into())
        );
        let bad_port = Source::from_pairs([("PGHOST", "h"), ("PGPORT", "99999")]);
        assert_eq!(
            DatabaseSettings::load(&bad_port)
                .err()
                .map(|e| e.variable().to_owned()),
            Some("PGPORT".into())
        );
        let url = Source::from_pairs([("DATABASE_URL", "postgres://u:hunter2@h/db")]);
        assert!(!format!("{:?}", DatabaseSettings::load(&url)).contains("hunter2"));
    }
}
