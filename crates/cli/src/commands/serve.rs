//! `serve`: the HTTP server, with the exchange and keep-alive worker in-process by default.

use anyhow::Context;
use cafe24_client::Client;
use cafe24_core::settings::{ClientSettings, LogFormat, Settings, Source, TokenSettings};
use cafe24_server::{shutdown, telemetry, AppState, Application};
use cafe24_tokens::Worker;
use tokio::sync::watch;

use crate::args::ServeArgs;

pub async fn run(source: &Source, args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(source)?;
    let client_settings = ClientSettings::load(source)?;
    // The token lifecycle is needed by the worker and by the proxy; without either, the server
    // needs no encryption keys (the public callback only stores codes).
    let tokens = if args.no_worker && client_settings.admin_token.is_none() {
        None
    } else {
        Some(TokenSettings::load(source)?)
    };
    telemetry::init(LogFormat::load(source)?);
    let store = cafe24_store::connect(&settings.database)
        .await
        .context("opening the database")?;
    if !args.no_migrate {
        store.migrate().await.context("applying migrations")?;
    }
    let mut state = AppState::new(&settings, store.clone());
    // One token manager and one Admin API client (one bucket per mall) for the worker, the
    // webhook reconciliation and the proxy alike.
    let client = match tokens {
        Some(tokens) => {
            let manager = super::context::manager(store.clone(), settings.app.clone(), tokens)?;
            state
                .metrics
                .register(|registry| manager.metrics().register(registry));
            let client = Client::new(manager, &settings.app, client_settings.clone())?;
            state
                .metrics
                .register(|registry| client.metrics().register(registry));
            Some(client)
        }
        None => None,
    };
    state.proxy = super::api::proxy(client.as_ref(), &client_settings);
    let manager = client.as_ref().map(|c| c.tokens().clone());
    let (stop, stopped) = watch::channel(false);
    let worker = match client.filter(|_| !args.no_worker) {
        Some(client) => {
            let manager = client.tokens().clone();
            let mut tasks = super::webhooks::spawn(
                store.clone(),
                Some(client),
                &settings.webhooks,
                state.webhooks.stored.clone(),
                stopped.clone(),
            )?;
            let mut stopped = stopped.clone();
            let worker = Worker::new(manager).woken_by(state.code_stored.clone());
            tasks.push(tokio::spawn(worker.run(async move {
                let _ = stopped.changed().await;
            })));
            Some(tasks)
        }
        None => None,
    };
    let app = Application::with_state(state, &settings.http)
        .await
        .with_context(|| format!("binding {}", settings.http.listen_addr))?;
    let addr = app.local_addr()?;
    tracing::info!(%addr, backend = %store.backend(), worker = worker.is_some(), "listening");
    let served = app.run(shutdown::signal()).await;
    let _ = stop.send(true);
    for task in worker.into_iter().flatten() {
        if tokio::time::timeout(super::webhooks::STOP_GRACE, task)
            .await
            .is_err()
        {
            tracing::warn!("a background task did not stop in time");
        }
    }
    // Refreshes and exchanges already sent to Cafe24 (by the worker, or by a proxied call whose
    // client went away) finish and store their result before the database is closed.
    if let Some(manager) = manager {
        manager.drain(manager.drain_bound()).await;
    }
    store.close().await;
    tracing::info!("stopped");
    served.map_err(Into::into)
}
