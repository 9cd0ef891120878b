//! Versioned migrations, embedded in the binary, one list per backend. Each applies in its own
//! transaction and is recorded in `schema_migrations` with a checksum, so an edited migration
//! is detected instead of silently skipped.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::StoreError;

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: String,
    pub applied_at: DateTime<Utc>,
}

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "lifecycle",
        sql: include_str!("../migrations/postgres/0002_lifecycle.sql"),
    },
    Migration {
        version: 3,
        name: "webhooks",
        sql: include_str!("../migrations/postgres/0003_webhooks.sql"),
    },
    Migration {
        version: 4,
        name: "reliability",
        sql: include_str!("../migrations/postgres/0004_reliability.sql"),
    },
    Migration {
        version: 5,
        name: "fleet",
        sql: include_str!("../migrations/postgres/0005_fleet.sql"),
    },
];

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "lifecycle",
        sql: include_str!("../migrations/sqlite/0002_lifecycle.sql"),
    },
    Migration {
        version: 3,
        name: "webhooks",
        sql: include_str!("../migrations/sqlite/0003_webhooks.sql"),
    },
    Migration {
        version: 4,
        name: "reliability",
        sql: include_str!("../migrations/sqlite/0004_reliability.sql"),
    },
];

/// Which of `all` still need applying, given the `(version, checksum)` pairs already recorded.
pub(crate) fn pending<'a>(
    all: &'a [Migration],
    applied: &[(i64, String)],
) -> Result<Vec<&'a Migration>, StoreError> {
    if let Some((newest, _)) = applied.iter().max_by_key(|(v, _)| *v) {
        if all.iter().all(|m| m.version < *newest) {
            return Err(StoreError::SchemaTooNew(*newest));
        }
    }
    let mut out = Vec::new();
    for m in all {
        match applied.iter().find(|(v, _)| *v == m.version) {
            Some((_, sum)) if *sum != m.checksum() => {
                return Err(StoreError::MigrationChanged { version: m.version })
            }
            Some(_) => {}
            None => out.push(m),
        }
    }
    Ok(out)
}
