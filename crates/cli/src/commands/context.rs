//! Building the token lifecycle from settings, shared by the commands that need it.

use std::sync::Arc;

use anyhow::Context as _;
use cafe24_core::settings::{AppSettings, DatabaseSettings, LogFormat, Source, TokenSettings};
use cafe24_core::SystemClock;
use cafe24_store::Store;
use cafe24_tokens::{OAuthClient, TokenManager};

/// Logs, the migrated store and the token manager.
pub async fn lifecycle(source: &Source) -> anyhow::Result<Arc<TokenManager>> {
    let app = AppSettings::load(source)?;
    let tokens = TokenSettings::load(source)?;
    let database = DatabaseSettings::load(source)?;
    cafe24_server::telemetry::init(LogFormat::load(source)?);
    let store = open_store(&database).await?;
    manager(store, app, tokens)
}

pub async fn open_store(database: &DatabaseSettings) -> anyhow::Result<Arc<dyn Store>> {
    let store = cafe24_store::connect(database)
        .await
        .context("opening the database")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

pub fn manager(
    store: Arc<dyn Store>,
    app: AppSettings,
    tokens: TokenSettings,
) -> anyhow::Result<Arc<TokenManager>> {
    let oauth =
        OAuthClient::new(Arc::new(app), tokens.http_timeout).context("building the HTTP client")?;
    Ok(Arc::new(TokenManager::new(
        store,
        oauth,
        tokens,
        Arc::new(SystemClock),
    )))
}

/// The Admin API client over `manager`, configured from `source`.
pub fn api_client(
    source: &Source,
    manager: Arc<TokenManager>,
) -> anyhow::Result<cafe24_client::Client> {
    let settings = cafe24_core::settings::ClientSettings::load(source)?;
    let app = manager.oauth().app().clone();
    Ok(cafe24_client::Client::new(manager, &app, settings)?)
}
