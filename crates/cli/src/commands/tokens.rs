//! `worker`, `exchange --once`, `refresh --once|--all`, `token`, `revoke`, `reencrypt`.

use std::time::Duration;

use anyhow::Context as _;
use cafe24_core::settings::Source;
use cafe24_core::MallId;
use cafe24_tokens::keepalive::{due_malls, refresh_malls};
use cafe24_tokens::{Exchanger, Worker};

use super::context::lifecycle;
use crate::args::RefreshArgs;

pub async fn worker(source: &Source) -> anyhow::Result<()> {
    let manager = lifecycle(source).await?;
    let webhooks = cafe24_core::settings::WebhookSettings::load(source)?;
    tracing::info!(backend = %manager.store().backend(), "worker started");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let dispatch = super::webhooks::spawn(
        manager.store().clone(),
        Some(super::context::api_client(source, manager.clone())?),
        &webhooks,
        wake,
        stopped,
    )?;
    Worker::new(manager.clone())
        .run(cafe24_server::shutdown::signal())
        .await;
    let _ = stop.send(true);
    for task in dispatch {
        let _ = tokio::time::timeout(super::webhooks::STOP_GRACE, task).await;
    }
    manager.drain(manager.drain_bound()).await;
    manager.store().close().await;
    Ok(())
}

pub async fn exchange_once(source: &Source) -> anyhow::Result<()> {
    let manager = lifecycle(source).await?;
    let s = Exchanger::new(manager.clone())
        .drain()
        .await
        .context("exchanging codes")?;
    println!(
        "exchanged {}, failed {}, expired {}, retried {}",
        s.exchanged, s.failed, s.expired, s.retried
    );
    manager.store().close().await;
    Ok(())
}

pub async fn refresh(source: &Source, args: &RefreshArgs) -> anyhow::Result<()> {
    let manager = lifecycle(source).await?;
    // --all: a window longer than any refresh token's life makes every active mall due.
    let window = if args.all {
        Duration::from_secs(400 * 86_400)
    } else {
        manager.settings().keepalive_window
    };
    let malls = due_malls(&manager, window).await?;
    let bar = indicatif::ProgressBar::new(malls.len() as u64);
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let tick = || bar.inc(1);
    let s = refresh_malls(&manager, malls, window, &stop, None, &tick).await;
    bar.finish_and_clear();
    println!(
        "due {}, refreshed {}, already fresh {}, failed {}",
        s.due, s.refreshed, s.skipped, s.failed
    );
    manager.store().close().await;
    if s.failed > 0 {
        anyhow::bail!("{} mall(s) could not be refreshed; see the log", s.failed);
    }
    Ok(())
}

pub async fn token(source: &Source, mall: &MallId) -> anyhow::Result<()> {
    let manager = lifecycle(source).await?;
    let token = manager.access_token(mall).await?;
    // The one place a token is printed: on purpose, to stdout, for the operator who asked.
    println!("{}", token.expose_secret());
    manager.store().close().await;
    Ok(())
}

pub async fn revoke(source: &Source, mall: &MallId) -> anyhow::Result<()> {
    let manager = lifecycle(source).await?;
    manager.revoke(mall).await?;
    println!("{mall} revoked");
    manager.store().close().await;
    Ok(())
}

pub async fn reencrypt(source: &Source) -> anyhow::Result<()> {
    let manager = lifecycle(source).await?;
    let (rewritten, unchanged) = manager.reencrypt_all().await?;
    println!(
        "re-encrypted {rewritten} mall(s) under key {}; {unchanged} already current or revoked",
        manager.settings().keys.current().id()
    );
    manager.store().close().await;
    Ok(())
}
