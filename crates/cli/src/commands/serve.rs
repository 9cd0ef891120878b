//! `serve`: the HTTP server, with the exchange and keep-alive worker in-process by default.

use anyhow::Context;
use cafe24_core::settings::{LogFormat, Settings, Source, TokenSettings};
use cafe24_server::{shutdown, telemetry, AppState, Application};
use cafe24_tokens::Worker;
use tokio::sync::watch;

use crate::args::ServeArgs;

pub async fn run(source: &Source, args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(source)?;
    let tokens = if args.no_worker {
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
    state.proxy = super::api::proxy(source, &settings, store.clone(), &state.metrics)?;
    let (stop, stopped) = watch::channel(false);
    let worker = match tokens {
        Some(tokens) => {
            let manager = super::context::manager(store.clone(), settings.app.clone(), tokens)?;
            state
                .metrics
                .register(|registry| manager.metrics().register(registry));
            let mut tasks = super::webhooks::spawn(
                store.clone(),
                Some(manager.clone()),
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
    store.close().await;
    tracing::info!("stopped");
    served.map_err(Into::into)
}
