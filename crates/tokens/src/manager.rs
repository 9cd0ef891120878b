//! A valid access token for a mall, whatever the number of processes and tasks asking.
//!
//! A refresh is single-flight in the process (one task per mall refreshes; the others wait and
//! use its result) and exclusive across processes (the store's per-mall lock, held across the
//! call to Cafe24). After taking the lock the row is read again, so a waiter uses the winner's
//! token instead of refreshing with a refresh token that rotation has just killed. The attempt
//! is journaled before it is sent, and the result is written with compare-and-swap on the
//! row's version, so a newer pair is never overwritten by an older one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cafe24_core::oauth::TokenSet;
use cafe24_core::secret::{AccessToken, RefreshToken};
use cafe24_core::settings::TokenSettings;
use cafe24_core::{Clock, MallId};
use cafe24_store::{MallLock, MallStatus, NewTokens, Store, StoreError, TokenRecord};
use chrono::{DateTime, Utc};

use crate::crypto::{CryptoError, Sealer, TokenKind};
use crate::events::{LifecycleEvent, LifecycleHook};
use crate::metrics::TokenMetrics;
use crate::oauth_client::{OAuthClient, OAuthError};

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
}

/// Why a refresh is wanted; each decides, from the row re-read under the lock, whether it
/// still is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// The access token of this row version expires within the margin. A newer row whose
    /// token is still valid is used as it is (another task refreshed meanwhile).
    Expiring { seen_version: i64 },
    /// Cafe24 refused the access token of this row version (a 401): refresh unless someone
    /// already has.
    Forced { seen_version: i64 },
    /// The refresh token expires within the window (keep-alive).
    KeepAlive { window: Duration },
}

pub struct TokenManager {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) oauth: OAuthClient,
    pub(crate) sealer: Sealer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: TokenSettings,
    flights: Mutex<HashMap<MallId, Arc<tokio::sync::Mutex<()>>>>,
    hooks: Vec<Arc<dyn LifecycleHook>>,
    pub(crate) metrics: TokenMetrics,
}

impl TokenManager {
    pub fn new(
        store: Arc<dyn Store>,
        oauth: OAuthClient,
        settings: TokenSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            oauth,
            sealer: Sealer::new(settings.keys.clone()),
            clock,
            settings,
            flights: Mutex::new(HashMap::new()),
            hooks: Vec::new(),
            metrics: TokenMetrics::default(),
        }
    }

    pub fn with_hook(mut self, hook: Arc<dyn LifecycleHook>) -> Self {
        self.hooks.push(hook);
        self
    }

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

    /// A valid access token, refreshed first if it expires within the margin.
    pub async fn access_token(&self, mall: &MallId) -> Result<AccessToken, TokenError> {
        let row = self.active_row(mall).await?;
        let need = Need::Expiring {
            seen_version: row.version,
        };
        if !self.needs(need, &row) {
            return self.open_access(&row);
        }
        self.refresh_with(mall, need).await.map(|(token, _)| token)
    }

    /// Refreshes now (after Cafe24 answered 401 to the current token, or on request) — unless
    /// another task or process refreshed since this token was read; then its token is returned.
    pub async fn force_refresh(&self, mall: &MallId) -> Result<AccessToken, TokenError> {
        let row = self.active_row(mall).await?;
        self.refresh_with(
            mall,
            Need::Forced {
                seen_version: row.version,
            },
        )
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
        self.refresh_with(
            mall,
            Need::Forced {
                seen_version: row.version,
            },
        )
        .await
        .map(|(token, _)| token)
    }

    /// Refreshes if the refresh token expires within `window`; `true` if a refresh happened.
    pub async fn keep_alive(&self, mall: &MallId, window: Duration) -> Result<bool, TokenError> {
        self.refresh_with(mall, Need::KeepAlive { window })
            .await
            .map(|(_, refreshed)| refreshed)
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
            Need::Forced { seen_version } => row.version == seen_version,
            Need::KeepAlive { window } => row.refresh_expires_at - span(window) <= now,
        }
    }

    fn flight(&self, mall: &MallId) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        flights.entry(mall.clone()).or_default().clone()
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

    async fn refresh_with(
        &self,
        mall: &MallId,
        need: Need,
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
        let result = self.refresh_locked(&mut *held.lock, mall, need).await;
        held.release(mall).await;
        result
    }

    async fn refresh_locked(
        &self,
        lock: &mut dyn MallLock,
        mall: &MallId,
        need: Need,
    ) -> Result<(AccessToken, bool), TokenError> {
        let row = lock
            .current()
            .await?
            .ok_or_else(|| TokenError::NotInstalled(mall.clone()))?;
        check_status(&row)?;
        if !self.needs(need, &row) {
            // Another process refreshed while we waited for the lock: use its token.
            return Ok((self.open_access(&row)?, false));
        }
        let refresh = RefreshToken::new(self.sealer.open(
            mall,
            TokenKind::Refresh,
            &row.key_id,
            &row.refresh_ciphertext,
        )?);
        lock.journal_refresh(self.clock.now()).await?;
        match self.oauth.refresh(mall, &refresh).await {
            Ok(set) => {
                let new = self.seal(mall, &set, &row.client_id);
                if lock
                    .replace_tokens(row.version, &new, self.clock.now())
                    .await?
                {
                    self.metrics.refresh("ok");
                    tracing::info!(mall_id = %mall, version = row.version + 1, "tokens refreshed");
                    self.emit(&LifecycleEvent::Refreshed { mall: mall.clone() });
                    return Ok((set.access_token, true));
                }
                // Only possible if a writer bypassed the lock (a new install): the newer row wins.
                tracing::error!(mall_id = %mall, "a newer token pair was stored during the refresh; keeping it");
                let latest = lock
                    .current()
                    .await?
                    .ok_or_else(|| TokenError::NotInstalled(mall.clone()))?;
                Ok((self.open_access(&latest)?, false))
            }
            Err(e) if e.is_dead_grant() => {
                // Before declaring the grant dead, look again: a newer grant may have landed.
                if let Some(latest) = lock.current().await? {
                    if latest.version != row.version && latest.status == MallStatus::Active {
                        return Ok((self.open_access(&latest)?, false));
                    }
                }
                let reason = e.to_string();
                lock.set_status(MallStatus::NeedsReauth, Some(&reason))
                    .await?;
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
            Err(e) => {
                lock.note_error(&e.to_string()).await?;
                self.metrics.refresh("error");
                tracing::warn!(mall_id = %mall, error = %e, "refresh failed; will retry");
                Err(e.into())
            }
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
        }
    }

    pub(crate) fn emit(&self, event: &LifecycleEvent) {
        for hook in &self.hooks {
            hook.on_event(event);
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
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
