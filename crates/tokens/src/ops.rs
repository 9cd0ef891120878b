//! Operations on a mall's grant besides refreshing: revoke (ours), uninstall (Cafe24's
//! webhook 90077/90078), and re-encryption under the newest key.

use cafe24_core::MallId;
use cafe24_store::{MallStatus, NewTokens};

use crate::crypto::TokenKind;
use crate::events::LifecycleEvent;
use crate::manager::{TokenError, TokenManager};

impl TokenManager {
    /// Calls Cafe24's revoke for the mall's tokens, then marks the mall revoked and wipes them.
    /// A token Cafe24 no longer knows counts as revoked; an unreachable Cafe24 is an error and
    /// changes nothing.
    pub async fn revoke(&self, mall: &MallId) -> Result<(), TokenError> {
        let mut held = self.hold(mall).await?;
        let result = async {
            let row = held.lock.current().await?.ok_or_else(|| TokenError::NotInstalled(mall.clone()))?;
            if row.status == MallStatus::Revoked {
                return Ok(());
            }
            let access = self.sealer.open(mall, TokenKind::Access, &row.key_id, &row.access_ciphertext)?;
            match self.oauth.revoke(mall, &access, "access_token").await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => return Err(TokenError::Cafe24(e)),
                Err(e) => tracing::warn!(mall_id = %mall, error = %e, "Cafe24 refused the revoke; the token is already dead"),
            }
            self.mark_revoked(&mut *held.lock, mall, "revoked by the app").await
        }
        .await;
        held.release(mall).await;
        result
    }

    /// The app was deleted or expired on the mall (webhook 90077/90078): Cafe24 has already
    /// dropped the grant, so only local state changes.
    pub async fn uninstalled(&self, mall: &MallId, reason: &str) -> Result<(), TokenError> {
        let mut held = self.hold(mall).await?;
        let result = async {
            match held.lock.current().await? {
                Some(row) if row.status != MallStatus::Revoked => {
                    self.mark_revoked(&mut *held.lock, mall, reason).await
                }
                _ => Ok(()),
            }
        }
        .await;
        held.release(mall).await;
        result
    }

    async fn mark_revoked(
        &self,
        lock: &mut dyn cafe24_store::MallLock,
        mall: &MallId,
        reason: &str,
    ) -> Result<(), TokenError> {
        lock.set_status(MallStatus::Revoked, Some(reason)).await?;
        self.store.record_event(mall, "revoked", reason).await?;
        tracing::info!(mall_id = %mall, reason, "mall revoked");
        self.emit(&LifecycleEvent::Revoked {
            mall: mall.clone(),
            reason: reason.to_owned(),
        });
        Ok(())
    }

    /// Re-encrypts every stored token under the current key. Returns (rewritten, already current).
    pub async fn reencrypt_all(&self) -> Result<(usize, usize), TokenError> {
        let current = self.sealer.current_key_id().to_owned();
        let (mut rewritten, mut unchanged) = (0, 0);
        for row in self.store.all_tokens().await? {
            if row.key_id == current || row.status == MallStatus::Revoked {
                unchanged += 1;
                continue;
            }
            let mall = row.mall_id.clone();
            let mut held = self.hold(&mall).await?;
            let result = async {
                let Some(row) = held.lock.current().await? else {
                    return Ok(false);
                };
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
