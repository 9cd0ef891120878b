//! Why the kit itself could not run (as opposed to a case failing).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("no COMMAND to check: give it after `--`")]
    NoCommand,
    #[error("PostgreSQL binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH; install PostgreSQL or pass --admin-url / --database-url")]
    NoPostgres,
    #[error("{step} failed: {detail}")]
    Cluster { step: &'static str, detail: String },
    #[error("database {what}: {source}")]
    Database {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the sandbox did not start: {0}")]
    Sandbox(String),
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        name: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} exited ({status}); the end of its stderr ({log}):\n{tail}")]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{name} was not ready (GET /healthz answering 200, or the setup command done) within {secs} s; the end of its stderr ({log}):\n{tail}")]
    NotHealthy {
        name: String,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl KitError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| KitError::Io { what, path, source }
    }

    pub fn database(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| KitError::Database { what, source }
    }
}
