//! Webhook work outside the request path: the dispatcher (in `serve` and `worker`), periodic
//! reconciliation, and `webhooks reconcile`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cafe24_client::Client;
use cafe24_core::settings::{Source, WebhookSettings};
use cafe24_core::MallId;
use cafe24_store::Store;
use cafe24_webhooks::{Dispatcher, Forwarder, Reconciler};
use tokio::sync::{watch, Notify};

/// Dispatches stored events (waking on `wake`) and, if an interval is set, reconciles with
/// Cafe24's delivery logs, until `stop` changes.
pub fn spawn(
    store: Arc<dyn Store>,
    client: Option<Client>,
    settings: &WebhookSettings,
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut dispatcher = Dispatcher::new(store, settings.max_attempts);
    if let Some(client) = &client {
        dispatcher = dispatcher.with_manager(client.tokens().clone());
    }
    if let (Some(url), Some(secret)) = (&settings.forward_url, &settings.forward_secret) {
        dispatcher = dispatcher
            .with_forward(Forwarder::new(url.clone(), secret.clone()).map_err(anyhow::Error::msg)?);
    }
    let mut stopped = stop.clone();
    let mut tasks = vec![tokio::spawn(dispatcher.run(wake, async move {
        let _ = stopped.changed().await;
    }))];
    if let (Some(client), false) = (client, settings.reconcile_interval.is_zero()) {
        let reconciler = Reconciler::new(
            client,
            settings.trace_header.is_some(),
            settings.reconcile_window,
        );
        let interval = settings.reconcile_interval;
        let mut stop = stop;
        tasks.push(tokio::spawn(async move {
            loop {
                match reconciler.reconcile_all().await {
                    Ok(s) => tracing::info!(
                        logged = s.logged,
                        confirmed = s.confirmed,
                        recovered = s.recovered,
                        "webhook reconciliation"
                    ),
                    Err(e) => tracing::warn!(error = %e, "webhook reconciliation failed"),
                }
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        }));
    }
    Ok(tasks)
}

/// `webhooks reconcile [MALL_ID]`.
pub async fn reconcile(source: &Source, mall: Option<&MallId>) -> anyhow::Result<()> {
    let manager = super::context::lifecycle(source).await?;
    let settings = WebhookSettings::load(source)?;
    let client = super::context::api_client(source, manager.clone())?;
    let reconciler = Reconciler::new(
        client,
        settings.trace_header.is_some(),
        settings.reconcile_window,
    );
    let s = match mall {
        Some(mall) => reconciler
            .reconcile_mall(mall)
            .await
            .context("reconciling")?,
        None => reconciler.reconcile_all().await.context("reconciling")?,
    };
    // Dispatch what was recovered now rather than waiting for the worker.
    let dispatched = Dispatcher::new(manager.store().clone(), settings.max_attempts)
        .with_manager(manager.clone())
        .run_once()
        .await?
        .dispatched;
    println!(
        "logged {}, confirmed {}, recovered {}, dispatched {dispatched}",
        s.logged, s.confirmed, s.recovered
    );
    manager.store().close().await;
    Ok(())
}

/// How long `serve`/`worker` wait for the dispatcher when stopping.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
