//! Test support shared by the crates' integration tests: a fresh database per test, on real
//! PostgreSQL (the cluster `scripts/test` starts) or on a new SQLite file.

use std::path::PathBuf;
use std::time::Duration;

use cafe24_core::secret::DatabaseUrl;
use cafe24_core::settings::{DatabaseKind, DatabaseSettings};
use rand::Rng;
use sqlx::{Connection, Executor, PgConnection};

/// A superuser URL of the PostgreSQL cluster tests may create databases in.
pub const TEST_DATABASE_VAR: &str = "CAFE24_TEST_DATABASE_URL";

/// Which backend a behaviour test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Postgres,
    Sqlite,
}

/// Settings for a brand-new, empty database on `backend`.
pub async fn fresh_database(backend: TestBackend) -> DatabaseSettings {
    match backend {
        TestBackend::Postgres => fresh_postgres().await,
        TestBackend::Sqlite => fresh_sqlite(),
    }
}

fn settings(kind: DatabaseKind) -> DatabaseSettings {
    DatabaseSettings {
        kind,
        max_connections: 5,
        acquire_timeout: Duration::from_secs(3),
        reserved_connections: 1,
        lock_connections: 5,
        coalesce_code_notifications: true,
    }
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::thread_rng().gen::<u64>())
}

/// The admin URL, or a failure that says how to get one. PostgreSQL tests never skip.
pub fn admin_url() -> String {
    std::env::var(TEST_DATABASE_VAR).unwrap_or_else(|_| {
        panic!(
            "{TEST_DATABASE_VAR} is not set: PostgreSQL tests need a cluster. \
             Run `scripts/test`, which starts a throwaway PostgreSQL and sets it."
        )
    })
}

/// Creates an empty database in the test cluster and returns settings that point at it.
pub async fn fresh_postgres() -> DatabaseSettings {
    let admin = admin_url();
    let name = unique_name("cafe24_test");
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {TEST_DATABASE_VAR}: {e}"));
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    let _ = conn.close().await;
    settings(DatabaseKind::PostgresUrl(DatabaseUrl::new(database_url(
        &admin, &name,
    ))))
}

/// `admin` with its database name replaced by `name`.
pub fn database_url(admin: &str, name: &str) -> String {
    let mut url =
        url::Url::parse(admin).unwrap_or_else(|e| panic!("{TEST_DATABASE_VAR} is not a URL: {e}"));
    url.set_path(name);
    url.to_string()
}

/// A SQLite file in a new temporary directory.
pub fn fresh_sqlite() -> DatabaseSettings {
    let dir = std::env::temp_dir().join(unique_name("cafe24-test"));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    settings(DatabaseKind::Sqlite(dir.join("cafe24.sqlite3")))
}

/// PostgreSQL settings for a port nothing listens on: every connection is refused.
pub fn unreachable_postgres() -> DatabaseSettings {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut s = settings(DatabaseKind::PostgresUrl(DatabaseUrl::new(format!(
        "postgres://nobody@127.0.0.1:{port}/none"
    ))));
    s.acquire_timeout = Duration::from_secs(1);
    s
}

/// The SQLite file behind settings from [`fresh_sqlite`].
pub fn sqlite_path(settings: &DatabaseSettings) -> Option<PathBuf> {
    match &settings.kind {
        DatabaseKind::Sqlite(p) => Some(p.clone()),
        _ => None,
    }
}

/// Declares `mod NAME { sqlite, postgres }` tests that run `async fn NAME(TestBackend)` on each
/// backend, so the same behaviour is specified once and checked twice.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::TestBackend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::TestBackend::Postgres).await
            }
        }
    )*};
}

/// Runs one statement directly against the database behind `settings` (tests use it to move
/// time, e.g. backdate a row, or to read raw values).
pub async fn execute(settings: &DatabaseSettings, sql: &str) {
    match &settings.kind {
        DatabaseKind::Sqlite(path) => {
            let url = format!("sqlite://{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("open sqlite");
            conn.execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        DatabaseKind::PostgresUrl(url) => {
            let mut conn = PgConnection::connect(url.expose_secret())
                .await
                .expect("connect");
            conn.execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        DatabaseKind::PostgresParams { .. } => panic!("tests use URLs"),
    }
}

/// Every byte the database holds for these settings, as far as a test can reach it: the SQLite
/// file and its WAL, or on PostgreSQL the text rendering of every row of every `cafe24` table.
pub async fn raw_database_bytes(settings: &DatabaseSettings) -> Vec<u8> {
    match &settings.kind {
        DatabaseKind::Sqlite(path) => {
            let mut bytes = std::fs::read(path).expect("read sqlite file");
            if let Ok(wal) = std::fs::read(path.with_extension("sqlite3-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        DatabaseKind::PostgresUrl(url) => {
            let mut conn = PgConnection::connect(url.expose_secret())
                .await
                .expect("connect");
            let mut out = Vec::new();
            for table in [
                "authorization_codes",
                "tokens",
                "webhook_events",
                "mall_events",
            ] {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM cafe24.{table} t"))
                        .fetch_all(&mut conn)
                        .await
                        .expect("dump");
                for row in rows {
                    out.extend(row.into_bytes());
                    out.push(b'\n');
                }
            }
            out
        }
        DatabaseKind::PostgresParams { .. } => panic!("tests use URLs"),
    }
}
