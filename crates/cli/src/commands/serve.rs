//! `serve`: the HTTP server.

use anyhow::Context;
use cafe24_core::settings::{LogFormat, Settings, Source};
use cafe24_server::{shutdown, telemetry, Application};

use crate::args::ServeArgs;

pub async fn run(source: &Source, args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(source)?;
    telemetry::init(LogFormat::load(source)?);
    let store = cafe24_store::connect(&settings.database)
        .await
        .context("opening the database")?;
    if !args.no_migrate {
        store.migrate().await.context("applying migrations")?;
    }
    let app = Application::build(&settings, store.clone())
        .await
        .with_context(|| format!("binding {}", settings.http.listen_addr))?;
    let addr = app.local_addr()?;
    tracing::info!(%addr, backend = %store.backend(), "listening");
    app.run(shutdown::signal()).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
