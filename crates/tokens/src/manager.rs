//! A valid access token for a mall, whatever the number of processes and tasks asking — and
//! whatever happens to whoever asked.
//!
//! A refresh is single-flight in the process (one task per mall refreshes; the others wait and
//! use its result) and exclusive across processes (the store's per-mall lock, held across the
//! call to Cafe24). After taking the lock the row is read again, so a waiter uses the winner's
//! token instead of refreshing with a refresh token that rotation has just killed.
//!
//! Once decided, the work runs on a task of its own ([`Core::detached`]): a caller that times
//! out, disconnects or is shut down stops waiting, the refresh does not, because Cafe24 rotates
//! the pair the moment it answers and a pair dropped on the floor is a lost mall. The attempt
//! is journaled before it is sent; a journal younger than the token call can take means "in
//! flight elsewhere" (a process whose lock connection died), so no one sends the same refresh
//! token twice. The result is written with compare-and-swap on the row's version, retried on a
//! fresh connection if the database fails, so a newer pair is never overwritten by an older one
//! and a rotated pair survives a failover.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cafe24_core::oauth::TokenSet;
use cafe24_core::secret::{AccessToken, RefreshToken};
use cafe24_core::settings::TokenSettings;
use cafe24_core::{Clock, MallId};
use cafe24_store::{MallLock, MallStatus, NewTokens, Store, StoreError, TokenRecord};
use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::crypto::{CryptoError, Sealer, TokenKind};
use crate::events::{LifecycleEvent, LifecycleHook};
use crate::metrics::TokenMetrics;
use crate::oauth_client::{OAuthClient, OAuthError};

/// Added to the token call's timeout to bound how long a journaled refresh may be in flight.
pub(crate) const JOURNAL_SLACK: Duration = Duration::from_secs(2);
/// How long a pair Cafe24 already issued is retried against a failing database.
pub(crate) const PERSIST_FOR: Duration = Duration::from_secs(60);
/// A forced refresh (after a 401) is not repeated within this long of the last rotation: a
/// token refused right after a refresh is refused for another reason, and rotating again
/// would only burn grants.
pub(crate) const FORCED_REFRESH_FLOOR: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("mall {0} is not installed")]
    NotInstalled(MallId),
    #[error("mall {0} must be installed again: its grant is dead")]
    NeedsReauth(MallId),
    #[error("mall {0} was revoked")]
    Revoked(MallId),
    #[error(transparent)]
    Cafe24(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Not started: too little time is left before the caller's deadline to finish it.
    #[error("not enough time left before the deadline to finish a call to Cafe24")]
    NoTime,
    #[error("token work ended abnormally: {0}")]
    Aborted(String),
}

/// Why a refresh is wanted; each decides, from the row re-read under the lock, whether it
/// still is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// The access token of this row version expires within the margin. A newer row whose
    /// token is still valid is used as it is (another task refreshed meanwhile).
    Expiring { seen_version: i64 },
    /// Cafe24 refused the access token of this row version (a 401): refresh unless someone
    /// already has, or the pair was rotated moments ago.
    Forced { seen_version: i64 },
    /// The refresh token expires within the window (keep-alive).
    KeepAlive { window: Duration },
}

/// The token manager. Cheap to clone; every clone shares one state, including the work in
/// flight that [`TokenManager::drain`] waits for.
#[derive(Clone)]
pub struct TokenManager {
    core: Arc<Core>,
}

/// Everything a detached refresh or exchange needs, shared by the manager and its tasks.
pub struct Core {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) oauth: OAuthClient,
    pub(crate) sealer: Sealer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: TokenSettings,
    flights: Mutex<HashMap<MallId, Arc<tokio::sync::Mutex<()>>>>,
    hooks: Mutex<Vec<Arc<dyn LifecycleHook>>>,
    pub(crate) metrics: TokenMetrics,
    tracker: TaskTracker,
}

impl Deref for TokenManager {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl TokenManager {
    pub fn new(
        store: Arc<dyn Store>,
        oauth: OAuthClient,
        settings: TokenSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            core: Arc::new(Core {
                store,
                oauth,
                sealer: Sealer::new(settings.keys.clone()),
                clock,
                settings,
                flights: Mutex::new(HashMap::new()),
                hooks: Mutex::new(Vec::new()),
                metrics: TokenMetrics::default(),
                tracker: TaskTracker::new(),
            }),
        }
    }

    pub fn with_hook(self, hook: Arc<dyn LifecycleHook>) -> Self {
        lock(&self.core.hooks).push(hook);
        self
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// A valid access token, refreshed first if it expires within the margin.
    pub async fn access_token(&self, mall: &MallId) -> Result<AccessToken, TokenError> {
        let row = self.active_row(mall).await?;
        let need = Need::Expiring {
            seen_version: row.version,
        };
        if !self.needs(need, &row) {
            return self.open_access(&row);
        }
        self.refresh_with(mall, need, None)
            .await
            .map(|(token, _)| token)
    }

    /// Refreshes now (after Cafe24 answered 401 to the current token, or on request) — unless
    /// another task or process refreshed since this token was read; then its token is returned.
    pub async fn force_refresh(&self, mall: &MallId) -> Result<AccessToken, TokenError> {
        let row = self.active_row(mall).await?;
        let need = Need::Forced {
            seen_version: row.version,
        };
        self.refresh_with(mall, need, None)
            .await
            .map(|(token, _)| token)
    }

    /// Cafe24 answered 401 to `rejected`: refresh, unless the stored token is no longer that one
    /// (another task or process refreshed meanwhile), in which case the stored one is returned.
    pub async fn refresh_rejected(
        &self,
        mall: &MallId,
        rejected: &AccessToken,
    ) -> Result<AccessToken, TokenError> {
        let row = self.active_row(mall).await?;
        let current = self.open_access(&row)?;
        if current.expose_secret() != rejected.expose_secret() {
            return Ok(current);
        }
        let need = Need::Forced {
            seen_version: row.version,
        };
        self.refresh_with(mall, need, None)
            .await
            .map(|(token, _)| token)
    }

    /// Refreshes if the refresh token expires within `window`; `true` if a refresh happened.
    pub async fn keep_alive(&self, mall: &MallId, window: Duration) -> Result<bool, TokenError> {
        self.keep_alive_by(mall, window, None).await
    }

    /// [`TokenManager::keep_alive`] that sends nothing to Cafe24 unless the call and the write
    /// of its result fit before `deadline` ([`TokenError::NoTime`] otherwise): for a Lambda
    /// invocation, which is frozen the moment it returns.
    pub async fn keep_alive_by(
        &self,
        mall: &MallId,
        window: Duration,
        deadline: Option<Instant>,
    ) -> Result<bool, TokenError> {
        self.refresh_with(mall, Need::KeepAlive { window }, deadline)
            .await
            .map(|(_, refreshed)| refreshed)
    }

    /// Waits (at most `bound`) for every refresh and exchange in flight to finish and store its
    /// result: what shutdown calls once it has stopped starting new work. `true` if all finished.
    pub async fn drain(&self, bound: Duration) -> bool {
        self.core.tracker.close();
        let finished = tokio::time::timeout(bound, self.core.tracker.wait())
            .await
            .is_ok();
        self.core.tracker.reopen();
        if !finished {
            tracing::error!(
                in_flight = self.core.tracker.len(),
                "token work still in flight at the end of the shutdown bound"
            );
        }
        finished
    }

    /// Refreshes and exchanges currently in flight.
    pub fn in_flight(&self) -> usize {
        self.core.tracker.len()
    }

    /// How long a drain must be allowed so that work already sent can finish: the token call,
    /// then the write of its result with its retries.
    pub fn drain_bound(&self) -> Duration {
        self.settings.http_timeout + JOURNAL_SLACK + PERSIST_FOR
    }

    async fn refresh_with(
        &self,
        mall: &MallId,
        need: Need,
        deadline: Option<Instant>,
    ) -> Result<(AccessToken, bool), TokenError> {
        let core = self.core.clone();
        let mall = mall.clone();
        self.detached(async move { core.refresh_flight(&mall, need, deadline).await })
            .await
    }
}

impl Core {
    pub fn metrics(&self) -> &TokenMetrics {
        &self.metrics
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn oauth(&self) -> &OAuthClient {
        &self.oauth
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `work` on a task of its own, tracked for [`TokenManager::drain`], and waits for it.
    /// Dropping the returned future stops the waiting, never the work.
    pub(crate) async fn detached<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, TokenError>> + Send + 'static,
    ) -> Result<T, TokenError> {
        self.spawn(work)
            .await
            .map_err(|e| TokenError::Aborted(e.to_string()))?
    }

    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.tracker.spawn(work)
    }

    async fn active_row(&self, mall: &MallId) -> Result<TokenRecord, TokenError> {
        let row = self
            .store
            .tokens(mall)
            .await?
            .ok_or_else(|| TokenError::NotInstalled(mall.clone()))?;
        check_status(&row)?;
        Ok(row)
    }

    fn needs(&self, need: Need, row: &TokenRecord) -> bool {
        let now = self.clock.now();
        match need {
            Need::Expiring { seen_version } if row.version != seen_version => {
                row.access_expires_at <= now
            }
            Need::Expiring { .. } => {
                row.access_expires_at - span(self.settings.refresh_margin) <= now
            }
            Need::Forced { seen_version } => {
                row.version == seen_version
                    && row
                        .last_refreshed_at
                        .is_none_or(|at| now - at >= span(FORCED_REFRESH_FLOOR))
            }
            Need::KeepAlive { window } => row.refresh_expires_at - span(window) <= now,
        }
    }

    /// How long a journaled refresh may still be in flight (in another process whose lock
    /// connection died, or whose answer never came): `None` once it cannot be.
    fn in_flight_elsewhere(&self, row: &TokenRecord) -> Option<Duration> {
        let started = row.refresh_started_at?;
        let until = started + span(self.settings.http_timeout + JOURNAL_SLACK);
        (until - self.clock.now()).to_std().ok()
    }

    fn flight(&self, mall: &MallId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.flights).entry(mall.clone()).or_default().clone()
    }

    /// Takes the mall's in-process flight, then its cross-process lock. The flight makes tasks
    /// of one process queue here rather than in the database.
    pub(crate) async fn hold(&self, mall: &MallId) -> Result<Held<'_>, TokenError> {
        let flight = self.flight(mall).lock_owned().await;
        let lock = self.store.lock_mall(mall, self.settings.lock_wait).await?;
        Ok(Held {
            _flight: flight,
            lock,
        })
    }

    async fn refresh_flight(
        &self,
        mall: &MallId,
        need: Need,
        deadline: Option<Instant>,
    ) -> Result<(AccessToken, bool), TokenError> {
        let flight = self.flight(mall).lock_owned().await;
        // Cheap path for tasks that queued behind a refresh: the work is usually done.
        let row = self.active_row(mall).await?;
        if !self.needs(need, &row) {
            return Ok((self.open_access(&row)?, false));
        }
        let lock = self.store.lock_mall(mall, self.settings.lock_wait).await?;
        let mut held = Held {
            _flight: flight,
            lock,
        };
        let result = self
            .refresh_locked(&mut *held.lock, mall, need, deadline)
            .await;
        held.release(mall).await;
        result
    }

    async fn locked_row(
        &self,
        lock: &mut dyn MallLock,
        mall: &MallId,
    ) -> Result<TokenRecord, TokenError> {
        let row = lock
            .current()
            .await?
            .ok_or_else(|| TokenError::NotInstalled(mall.clone()))?;
        check_status(&row)?;
        Ok(row)
    }

    async fn refresh_locked(
        &self,
        lock: &mut dyn MallLock,
        mall: &MallId,
        need: Need,
        deadline: Option<Instant>,
    ) -> Result<(AccessToken, bool), TokenError> {
        let mut row = self.locked_row(lock, mall).await?;
        loop {
            if !self.needs(need, &row) {
                // Another process refreshed while we waited for the lock: use its token.
                return Ok((self.open_access(&row)?, false));
            }
            let Some(wait) = self.in_flight_elsewhere(&row) else {
                break;
            };
            tracing::info!(mall_id = %mall, wait_ms = wait.as_millis() as u64, "a refresh may be in flight elsewhere; waiting for it");
            tokio::time::sleep(wait.min(Duration::from_millis(250))).await;
            row = self.locked_row(lock, mall).await?;
        }
        if deadline.is_some_and(|d| {
            Instant::now() + self.settings.http_timeout + JOURNAL_SLACK + JOURNAL_SLACK > d
        }) {
            return Err(TokenError::NoTime);
        }
        let refresh = RefreshToken::new(self.sealer.open(
            mall,
            TokenKind::Refresh,
            &row.key_id,
            &row.refresh_ciphertext,
        )?);
        lock.journal_refresh(self.clock.now()).await?;
        match self.oauth.refresh(mall, &refresh).await {
            Ok(set) => self.store_refreshed(lock, mall, &row, set).await,
            Err(e) if e.is_dead_grant() => self.declare_dead(lock, mall, &row, &e).await,
            Err(e) => {
                lock.note_error(&e.to_string(), e.grant_untouched()).await?;
                self.metrics.refresh("error");
                tracing::warn!(mall_id = %mall, error = %e, "refresh failed; will retry");
                Err(e.into())
            }
        }
    }

    /// Stores the pair Cafe24 rotated: through the lock, or — if its connection failed — by
    /// compare-and-swap on a fresh connection, retried with backoff for [`PERSIST_FOR`].
    async fn store_refreshed(
        &self,
        lock: &mut dyn MallLock,
        mall: &MallId,
        row: &TokenRecord,
        set: TokenSet,
    ) -> Result<(AccessToken, bool), TokenError> {
        let new = self.seal(mall, &set, &row.client_id);
        let at = self.clock.now();
        let written = match lock.replace_tokens(row.version, &new, at).await {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(mall_id = %mall, error = %e, "storing the refreshed pair failed; retrying on a fresh connection");
                self.persist(mall, "the refreshed pair", || {
                    self.store.replace_tokens(mall, row.version, &new, at)
                })
                .await?
            }
        };
        if written {
            self.metrics.refresh("ok");
            self.flag_incomplete(mall, &set).await;
            tracing::info!(mall_id = %mall, version = row.version + 1, "tokens refreshed");
            self.emit(&LifecycleEvent::Refreshed { mall: mall.clone() });
            return Ok((set.access_token, true));
        }
        // Only possible if a writer bypassed the lock (a new install): the newer row wins.
        tracing::error!(mall_id = %mall, "a newer token pair was stored during the refresh; keeping it");
        let latest = self.active_row(mall).await?;
        Ok((self.open_access(&latest)?, false))
    }

    /// Cafe24 refused the refresh token. Unless a newer grant has landed meanwhile, the mall is
    /// flagged `needs_reauth` (fenced by the version we read, so a reinstall is never flagged).
    async fn declare_dead(
        &self,
        lock: &mut dyn MallLock,
        mall: &MallId,
        row: &TokenRecord,
        e: &OAuthError,
    ) -> Result<(AccessToken, bool), TokenError> {
        let reason = e.to_string();
        if !lock
            .set_status(MallStatus::NeedsReauth, Some(&reason), row.version)
            .await?
        {
            let latest = self.locked_row(lock, mall).await?;
            return Ok((self.open_access(&latest)?, false));
        }
        self.store
            .record_event(mall, "needs_reauth", &reason)
            .await?;
        self.metrics.refresh("dead_grant");
        self.metrics.needs_reauth();
        tracing::warn!(mall_id = %mall, reason = %reason, "refresh token refused: the mall needs a new install");
        self.emit(&LifecycleEvent::NeedsReauth {
            mall: mall.clone(),
            reason,
        });
        Err(TokenError::NeedsReauth(mall.clone()))
    }

    /// Retries a store write that must not be lost (a pair Cafe24 already issued) with
    /// exponential backoff, each attempt on a fresh connection from the pool.
    pub(crate) async fn persist<T, F, Fut>(
        &self,
        mall: &MallId,
        what: &str,
        mut write: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let give_up = Instant::now() + PERSIST_FOR;
        let mut backoff = Duration::from_millis(50);
        loop {
            match write().await {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() + backoff >= give_up => {
                    tracing::error!(mall_id = %mall, error = %e, what, "could not store what Cafe24 issued; the mall will need a new install");
                    return Err(e);
                }
                Err(e) => {
                    self.metrics.store_retry();
                    tracing::warn!(mall_id = %mall, error = %e, what, retry_in_ms = backoff.as_millis() as u64, "store write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// A token response that did not fully parse was stored with conservative expiries: say so.
    pub(crate) async fn flag_incomplete(&self, mall: &MallId, set: &TokenSet) {
        let Some(problem) = &set.incomplete else {
            return;
        };
        self.metrics.incomplete_response();
        tracing::warn!(mall_id = %mall, problem = %problem, "Cafe24's token response did not fully parse; tokens kept with conservative expiries");
        if let Err(e) = self
            .store
            .record_event(mall, "token_response_incomplete", problem)
            .await
        {
            tracing::warn!(mall_id = %mall, error = %e, "recording the incomplete response failed");
        }
    }

    pub(crate) fn open_access(&self, row: &TokenRecord) -> Result<AccessToken, TokenError> {
        let plain = self.sealer.open(
            &row.mall_id,
            TokenKind::Access,
            &row.key_id,
            &row.access_ciphertext,
        )?;
        Ok(AccessToken::new(plain))
    }

    /// Encrypts a token response into a row to store.
    pub fn seal(&self, mall: &MallId, set: &TokenSet, fallback_client_id: &str) -> NewTokens {
        NewTokens {
            mall_id: mall.clone(),
            shop_no: set.shop_no.clone(),
            user_id: set.user_id.clone(),
            client_id: set
                .client_id
                .clone()
                .unwrap_or_else(|| fallback_client_id.to_owned()),
            scopes: set.scopes.clone(),
            key_id: self.sealer.current_key_id().to_owned(),
            access_ciphertext: self.sealer.seal(
                mall,
                TokenKind::Access,
                set.access_token.expose_secret(),
            ),
            access_expires_at: set.access_expires_at,
            refresh_ciphertext: self.sealer.seal(
                mall,
                TokenKind::Refresh,
                set.refresh_token.expose_secret(),
            ),
            refresh_expires_at: set.refresh_expires_at,
            issued_at: set.issued_at,
            note: set.incomplete.as_ref().map(|p| {
                format!("Cafe24's token response did not fully parse ({p}); expiries are conservative guesses")
            }),
        }
    }

    pub(crate) fn emit(&self, event: &LifecycleEvent) {
        let hooks = lock(&self.hooks).clone();
        for hook in &hooks {
            hook.on_event(event);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn check_status(row: &TokenRecord) -> Result<(), TokenError> {
    match row.status {
        MallStatus::Active => Ok(()),
        MallStatus::NeedsReauth => Err(TokenError::NeedsReauth(row.mall_id.clone())),
        MallStatus::Revoked => Err(TokenError::Revoked(row.mall_id.clone())),
    }
}

pub(crate) fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A mall held exclusively: its in-process flight and its cross-process lock.
pub(crate) struct Held<'a> {
    _flight: tokio::sync::OwnedMutexGuard<()>,
    pub(crate) lock: Box<dyn MallLock + 'a>,
}

impl Held<'_> {
    pub(crate) async fn release(self, mall: &MallId) {
        if let Err(e) = self.lock.release().await {
            tracing::warn!(mall_id = %mall, error = %e, "releasing the mall lock failed; it frees itself");
        }
    }
}
