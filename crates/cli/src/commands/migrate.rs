//! `migrate`: apply pending migrations and print the schema version.

use anyhow::Context;
use cafe24_core::settings::{DatabaseSettings, LogFormat, Source};

pub async fn run(source: &Source) -> anyhow::Result<()> {
    let database = DatabaseSettings::load(source)?;
    cafe24_server::telemetry::init(LogFormat::load(source)?);
    let store = cafe24_store::connect(&database)
        .await
        .context("opening the database")?;
    let before = store
        .applied_migrations()
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let applied = store.migrate().await.context("applying migrations")?;
    let version = applied.last().map_or(0, |m| m.version);
    println!(
        "{} schema at version {version} ({} applied now)",
        store.backend(),
        applied.len().saturating_sub(before)
    );
    store.close().await;
    Ok(())
}
