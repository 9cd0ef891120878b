//! Init failures reach the Runtime API's `/init/error` with the one-line reason.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn a_sqlite_setting_is_an_init_error_naming_the_variable() {
    let file = std::env::temp_dir().join(format!(
        "cafe24-lambda-refused-{}.sqlite3",
        std::process::id()
    ));
    let mut env = http_env(&format!("sqlite:{}", file.display()));
    env.retain(|(k, _)| *k != "RUST_LOG");
    let mut function = Function::start(&env).await;

    let report = function
        .api
        .init_error(Duration::from_secs(30))
        .await
        .expect("an /init/error report");
    assert_eq!(report.body["errorType"], "Runtime.ConfigError");
    assert_eq!(
        report.error_type_header.as_deref(),
        Some("Runtime.ConfigError")
    );
    let message = report.body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("DATABASE_URL: ") && message.contains("PostgreSQL"),
        "{message}"
    );
    assert_eq!(
        function.process.exit_code(Duration::from_secs(30)).await,
        Some(2)
    );
    assert!(!file.exists(), "the SQLite file was created");
}

#[tokio::test]
async fn no_database_setting_at_all_is_refused_too() {
    let env: Vec<_> = http_env("unused")
        .into_iter()
        .filter(|(k, _)| *k != "DATABASE_URL")
        .collect();
    let mut function = Function::start(&env).await;
    let report = function
        .api
        .init_error(Duration::from_secs(30))
        .await
        .expect("an /init/error report");
    let message = report.body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.starts_with("DATABASE_URL: "), "{message}");
    assert_eq!(
        function.process.exit_code(Duration::from_secs(30)).await,
        Some(2)
    );
}

#[tokio::test]
async fn a_missing_secret_is_an_init_error_naming_it() {
    let env: Vec<_> = http_env("postgres://u@127.0.0.1:1/db")
        .into_iter()
        .filter(|(k, _)| *k != "EXPECTED_STATE_SECRET")
        .collect();
    let mut function = Function::start(&env).await;
    let report = function
        .api
        .init_error(Duration::from_secs(30))
        .await
        .expect("an /init/error report");
    let message = report.body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.starts_with("EXPECTED_STATE_SECRET"), "{message}");
    assert_eq!(
        function.process.exit_code(Duration::from_secs(30)).await,
        Some(2)
    );
}
