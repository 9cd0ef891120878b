//! Starting and stopping a sandbox, and the in-process handle tests use for setup and
//! inspection without going through HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{AppConfig, MallConfig, SandboxConfig};
use crate::conn::{ConnHandle, SandboxListener};
use crate::faults::{FaultError, FaultSpec};
use crate::launch::{LaunchError, LaunchParams};
use crate::state::{lock, RegistryError, SandboxState, Shared};
use crate::stats::StatsSnapshot;
use crate::tokens::TokenInfo;
use crate::webhooks::log::LogEntry;
use crate::webhooks::{FireOptions, FireReport};

/// Starts a sandbox on `addr` (use `127.0.0.1:0` for a free port).
pub async fn start(config: SandboxConfig, addr: SocketAddr) -> anyhow::Result<RunningSandbox> {
    let state = Shared::new(config)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let app =
        crate::routes::router(state.clone()).into_make_service_with_connect_info::<ConnHandle>();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(SandboxListener::new(listener), app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    Ok(RunningSandbox {
        addr: local,
        state,
        stop: Some(tx),
        task: Some(task),
    })
}

/// A running sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    state: SandboxState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSandbox {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/malls/{mall_id}`: the runtime's `CAFE24_BASE_URL`.
    pub fn base_url_template(&self) -> String {
        format!("http://{}/malls/{{mall_id}}", self.addr)
    }

    /// Base URL of one mall (`http://127.0.0.1:PORT/malls/shop`).
    pub fn mall_base_url(&self, mall_id: &str) -> String {
        format!("http://{}/malls/{mall_id}", self.addr)
    }

    /// Absolute URL of a sandbox path (`/_sandbox/stats`, `/malls/x/api/v2/…`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The shared state, for anything the methods below do not cover.
    pub fn state(&self) -> &SandboxState {
        &self.state
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.state.config
    }

    /// Counters of one mall (None if the mall does not exist).
    pub fn stats(&self, mall_id: &str) -> Option<StatsSnapshot> {
        self.state
            .existing_mall(mall_id)
            .map(|m| m.stats.snapshot())
    }

    /// Counters of every mall, and their totals.
    pub fn all_stats(&self) -> (BTreeMap<String, StatsSnapshot>, StatsSnapshot) {
        crate::control::all_stats(&self.state)
    }

    pub fn reset_stats(&self) {
        for m in self.state.malls() {
            m.stats.reset();
        }
    }

    pub fn set_fault(&self, endpoint: &str, spec: FaultSpec) -> Result<(), FaultError> {
        self.state.faults.set(endpoint, spec)
    }

    pub fn clear_fault(&self, endpoint: &str) {
        self.state.faults.clear(endpoint);
    }

    pub fn clear_faults(&self) {
        self.state.faults.clear_all();
    }

    /// Moves the sandbox clock (token/code expiry, the bucket) without sleeping.
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.state.clock.advance(by);
    }

    /// Stops the clock: the bucket no longer drains, nothing expires until `advance_clock`.
    pub fn freeze_clock(&self) {
        self.state.clock.freeze();
    }

    pub fn unfreeze_clock(&self) {
        self.state.clock.unfreeze();
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.state.now()
    }

    /// Lifetimes (seconds) of the access and refresh tokens issued from now on; tokens already
    /// issued keep theirs. Starts as the config's `access_token_ttl_secs`/`refresh_token_ttl_secs`.
    pub fn set_token_lifetimes(
        &self,
        access_secs: i64,
        refresh_secs: i64,
    ) -> Result<(), RegistryError> {
        self.state.set_token_lifetimes(access_secs, refresh_secs)
    }

    pub fn token_lifetimes(&self) -> (i64, i64) {
        self.state.token_lifetimes()
    }

    /// What the sandbox knows about a token it issued and still holds: its kind, mall, app and
    /// expiry (`None` once revoked, rotated away or never issued).
    pub fn token_info(&self, token: &str) -> Option<TokenInfo> {
        lock(&self.state.tokens).inspect(token)
    }

    pub fn add_mall(&self, cfg: MallConfig) -> Result<(), RegistryError> {
        self.state.add_mall(cfg).map(|_| ())
    }

    pub fn add_app(&self, app: AppConfig) -> Result<(), RegistryError> {
        self.state.add_app(app)
    }

    /// Fires a webhook event for a mall (see `FireOptions::wait`).
    pub async fn fire_webhook(
        &self,
        mall_id: &str,
        event_no: u32,
        resource: Value,
        opts: FireOptions,
    ) -> anyhow::Result<FireReport> {
        let mall = self
            .state
            .mall(mall_id)
            .ok_or_else(|| anyhow::anyhow!("unknown mall {mall_id:?}"))?;
        Ok(crate::webhooks::fire(&self.state, &mall, event_no, resource, opts).await)
    }

    /// Every webhook attempt logged for a mall, oldest first.
    pub fn webhook_logs(&self, mall_id: &str) -> Vec<LogEntry> {
        self.state
            .existing_mall(mall_id)
            .map(|m| lock(&m.webhook).logs.clone())
            .unwrap_or_default()
    }

    pub fn launch_url(&self, params: &LaunchParams) -> Result<String, LaunchError> {
        crate::launch::launch_url(&self.state, params)
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
