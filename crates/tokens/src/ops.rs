//! Operations on a mall's grant besides refreshing: revoke (ours), uninstall (Cafe24's
//! webhook 90077/90078), and re-encryption under the newest key.

use cafe24_core::MallId;
use cafe24_store::{MallLock, MallStatus, NewTokens, StoreError};
use chrono::{DateTime, Utc};

use crate::crypto::TokenKind;
use crate::events::LifecycleEvent;
use crate::manager::{Core, TokenError, TokenManager};

impl TokenManager {
    /// Calls Cafe24's revoke for the mall's refresh and access tokens, then marks the mall
    /// revoked and wipes them. A token Cafe24 says is already invalid counts as revoked; an
    /// unreachable Cafe24, or one that refuses our credentials (`invalid_client`), is an error
    /// and changes nothing. Runs to completion even if the caller stops waiting.
    pub async fn revoke(&self, mall: &MallId) -> Result<(), TokenError> {
        let core = self.core().clone();
        let mall = mall.clone();
        self.detached(async move {
            let mut held = core.hold(&mall).await?;
            let result = core.revoke_held(&mut *held.lock, &mall).await;
            held.release(&mall).await;
            result
        })
        .await
    }

    /// The app was deleted or expired on the mall (webhook 90077/90078) at `occurred_at`:
    /// Cafe24 has already dropped that grant, so only local state changes. An event older than
    /// the grant now stored (a retried or reconciled delivery arriving after a reinstall)
    /// belongs to an earlier grant and is ignored. `true` if the mall was revoked now.
    pub async fn uninstalled(
        &self,
        mall: &MallId,
        reason: &str,
        occurred_at: DateTime<Utc>,
    ) -> Result<bool, TokenError> {
        let core = self.core().clone();
        let (mall, reason) = (mall.clone(), reason.to_owned());
        self.detached(async move {
            let mut held = core.hold(&mall).await?;
            let result = core
                .uninstall_held(&mut *held.lock, &mall, &reason, occurred_at)
                .await;
            held.release(&mall).await;
            result
        })
        .await
    }
}

impl Core {
    async fn revoke_held(&self, lock: &mut dyn MallLock, mall: &MallId) -> Result<(), TokenError> {
        let row = lock
            .current()
            .await?
            .ok_or_else(|| TokenError::NotInstalled(mall.clone()))?;
        if row.status == MallStatus::Revoked {
            return Ok(());
        }
        for (kind, hint, ciphertext) in [
            (TokenKind::Refresh, "refresh_token", &row.refresh_ciphertext),
            (TokenKind::Access, "access_token", &row.access_ciphertext),
        ] {
            let token = self.sealer.open(mall, kind, &row.key_id, ciphertext)?;
            match self.oauth.revoke(mall, &token, hint).await {
                Ok(()) => {}
                Err(e) if e.token_already_dead() => {
                    tracing::info!(mall_id = %mall, hint, error = %e, "Cafe24 no longer knows the token; counting it as revoked");
                }
                Err(e) => return Err(TokenError::Cafe24(e)),
            }
        }
        if !self
            .mark_revoked(lock, mall, "revoked by the app", row.version)
            .await?
        {
            tracing::warn!(mall_id = %mall, "a new grant landed during the revoke; it is kept");
        }
        Ok(())
    }

    async fn uninstall_held(
        &self,
        lock: &mut dyn MallLock,
        mall: &MallId,
        reason: &str,
        occurred_at: DateTime<Utc>,
    ) -> Result<bool, TokenError> {
        // A new grant can land between the read and the write (exchanges do not take the
        // lock); the version fence then makes us read again.
        for _ in 0..3 {
            let Some(row) = lock.current().await? else {
                return Ok(false);
            };
            if row.status == MallStatus::Revoked {
                return Ok(false);
            }
            if occurred_at < row.installed_at {
                tracing::info!(mall_id = %mall, %occurred_at, installed_at = %row.installed_at, "an uninstall older than the current grant; ignored");
                return Ok(false);
            }
            if self.mark_revoked(lock, mall, reason, row.version).await? {
                return Ok(true);
            }
        }
        Err(TokenError::Store(StoreError::LockTimeout))
    }

    async fn mark_revoked(
        &self,
        lock: &mut dyn MallLock,
        mall: &MallId,
        reason: &str,
        version: i64,
    ) -> Result<bool, TokenError> {
        if !lock
            .set_status(MallStatus::Revoked, Some(reason), version)
            .await?
        {
            return Ok(false);
        }
        self.store.record_event(mall, "revoked", reason).await?;
        tracing::info!(mall_id = %mall, reason, "mall revoked");
        self.emit(&LifecycleEvent::Revoked {
            mall: mall.clone(),
            reason: reason.to_owned(),
        });
        Ok(true)
    }
}

impl TokenManager {
    /// Re-encrypts every stored token under the current key. Returns (rewritten, already current).
    pub async fn reencrypt_all(&self) -> Result<(usize, usize), TokenError> {
        let current = self.sealer.current_key_id().to_owned();
        let (mut rewritten, mut unchanged) = (0, 0);
        for row in self.store.all_tokens().await? {
            // Only live grants: a `needs_reauth` row's tokens are dead, and rewriting it would
            // go through the compare-and-swap that marks a freshly rotated pair active.
            if row.key_id == current || row.status != MallStatus::Active {
                unchanged += 1;
                continue;
            }
            let mall = row.mall_id.clone();
            let mut held = self.hold(&mall).await?;
            let result = async {
                let Some(row) = held.lock.current().await? else {
                    return Ok(false);
                };
                if row.status != MallStatus::Active {
                    return Ok(false);
                }
                let access = self.sealer.open(
                    &mall,
                    TokenKind::Access,
                    &row.key_id,
                    &row.access_ciphertext,
                )?;
                let refresh = self.sealer.open(
                    &mall,
                    TokenKind::Refresh,
                    &row.key_id,
                    &row.refresh_ciphertext,
                )?;
                let new = NewTokens {
                    mall_id: mall.clone(),
                    shop_no: row.shop_no.clone(),
                    user_id: row.user_id.clone(),
                    client_id: row.client_id.clone(),
                    scopes: row.scopes.clone(),
                    key_id: current.clone(),
                    access_ciphertext: self.sealer.seal(&mall, TokenKind::Access, &access),
                    access_expires_at: row.access_expires_at,
                    refresh_ciphertext: self.sealer.seal(&mall, TokenKind::Refresh, &refresh),
                    refresh_expires_at: row.refresh_expires_at,
                    issued_at: row.issued_at,
                    note: row.last_error.clone(),
                };
                let at = row.last_refreshed_at.unwrap_or_else(|| self.now());
                Ok::<_, TokenError>(held.lock.replace_tokens(row.version, &new, at).await?)
            }
            .await;
            held.release(&mall).await;
            if result? {
                rewritten += 1;
            }
        }
        Ok((rewritten, unchanged))
    }
}
