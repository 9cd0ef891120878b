//! The database the target runs on: one given as it is (`--database-url`), a fresh database
//! created in a cluster (`--admin-url` or `CAFE24_TEST_DATABASE_URL`) and dropped at the end,
//! or a throwaway cluster the kit starts and removes.

mod cluster;

pub use cluster::tail;

use sqlx::{Connection, Executor, PgConnection};

use crate::error::KitError;

/// The longest the kit waits for the admin connection to create or drop a database.
const BOUND: std::time::Duration = std::time::Duration::from_secs(30);
use cluster::Cluster;

/// Where the target's database lives, and what to undo at the end.
pub struct Database {
    pub url: String,
    /// Said in the report: where the database came from.
    pub origin: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    DropDatabase { admin_url: String, name: String },
    Cluster(Cluster),
}

impl Database {
    pub async fn provision(
        database_url: Option<&str>,
        admin_url: Option<&str>,
    ) -> Result<Self, KitError> {
        if let Some(url) = database_url {
            return Ok(Self {
                url: url.to_owned(),
                origin: "the database given with --database-url".into(),
                cleanup: Cleanup::Nothing,
            });
        }
        if let Some(admin) = admin_url {
            let (url, name) = create_database(admin).await?;
            return Ok(Self {
                url,
                origin: format!("a fresh database {name} in the given cluster"),
                cleanup: Cleanup::DropDatabase {
                    admin_url: admin.to_owned(),
                    name,
                },
            });
        }
        let cluster = Cluster::start().await?;
        let (url, _) = match create_database(&cluster.admin_url()).await {
            Ok(created) => created,
            Err(e) => {
                cluster.stop().await;
                return Err(e);
            }
        };
        Ok(Self {
            url,
            origin: "a throwaway PostgreSQL cluster".into(),
            cleanup: Cleanup::Cluster(cluster),
        })
    }

    /// Drops what the kit created. Every connection to it must be closed first.
    pub async fn release(self) {
        match self.cleanup {
            Cleanup::Nothing => {}
            Cleanup::DropDatabase { admin_url, name } => {
                let drop = async {
                    if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = conn.execute(sql.as_str()).await;
                        let _ = conn.close().await;
                    }
                };
                let _ = tokio::time::timeout(BOUND, drop).await;
            }
            Cleanup::Cluster(cluster) => cluster.stop().await,
        }
    }
}

/// Creates `cafe24_conformance_<random>` in the cluster; its URL and name.
async fn create_database(admin: &str) -> Result<(String, String), KitError> {
    let name = format!("cafe24_conformance_{:012x}", rand::random::<u64>() >> 16);
    let mut url = url::Url::parse(admin).map_err(|e| KitError::Cluster {
        step: "reading the admin URL",
        detail: e.to_string(),
    })?;
    let create = async {
        let mut conn = PgConnection::connect(admin)
            .await
            .map_err(KitError::database("connecting to the admin URL"))?;
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .map_err(KitError::database("creating the database"))?;
        let _ = conn.close().await;
        Ok::<_, KitError>(())
    };
    tokio::time::timeout(BOUND, create)
        .await
        .map_err(|_| KitError::Cluster {
            step: "creating the database",
            detail: format!("no answer within {} s", BOUND.as_secs()),
        })??;
    url.set_path(&name);
    Ok((url.to_string(), name))
}
