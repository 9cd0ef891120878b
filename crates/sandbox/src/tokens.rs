//! Authorization codes, access tokens and refresh tokens, with Cafe24's rotation rules.
//!
//! One store behind one mutex: every operation is atomic, so two concurrent refreshes with
//! the same refresh token produce exactly one winner, like Cafe24.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::html::random_token;

/// What a token or code grants: one app on one mall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub mall_id: String,
    pub client_id: String,
    pub user_id: String,
    pub shop_no: u32,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
struct CodeRecord {
    grant: Arc<Grant>,
    redirect_uri: String,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct AccessRecord {
    grant: Arc<Grant>,
    expires_at: DateTime<Utc>,
    refresh_token: String,
}

#[derive(Debug)]
struct RefreshRecord {
    grant: Arc<Grant>,
    expires_at: DateTime<Utc>,
    access_token: String,
}

/// A freshly issued pair.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub grant: Arc<Grant>,
}

/// Lifetimes applied when issuing.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub access: Duration,
    pub refresh: Duration,
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("Invalid authorization code")]
    Unknown,
    #[error("Code time expired")]
    Expired,
    #[error("The code was issued to another client")]
    WrongClient,
    #[error("redirect_uri does not match the one used to authorize")]
    WrongRedirect,
}

/// Which kind of token [`TokenStore::inspect`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// What the sandbox knows about a token it issued and still holds (revoked, rotated-away
/// refresh tokens and pruned tokens are forgotten). For inspection by tests and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub kind: TokenKind,
    pub mall_id: String,
    pub client_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    Unknown,
    Expired,
}

#[derive(Debug, Default)]
pub struct TokenStore {
    codes: HashMap<String, CodeRecord>,
    access: HashMap<String, AccessRecord>,
    refresh: HashMap<String, RefreshRecord>,
    issued_since_prune: u32,
}

impl TokenStore {
    pub fn issue_code(
        &mut self,
        grant: Grant,
        redirect_uri: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> String {
        let code = random_token(22);
        self.codes.insert(
            code.clone(),
            CodeRecord {
                grant: Arc::new(grant),
                redirect_uri: redirect_uri.to_string(),
                expires_at: now + ttl,
            },
        );
        code
    }

    /// Consumes a code: any presented code is single use, even when it is refused.
    pub fn redeem_code(
        &mut self,
        code: &str,
        mall_id: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Arc<Grant>, CodeError> {
        let record = match self.codes.get(code) {
            Some(r) if r.grant.mall_id == mall_id => r,
            _ => return Err(CodeError::Unknown),
        };
        if record.grant.client_id != client_id {
            return Err(CodeError::WrongClient);
        }
        let record = self.codes.remove(code).ok_or(CodeError::Unknown)?;
        if now >= record.expires_at {
            return Err(CodeError::Expired);
        }
        if redirect_uri.is_some_and(|r| r != record.redirect_uri) {
            return Err(CodeError::WrongRedirect);
        }
        Ok(record.grant)
    }

    pub fn issue_pair(
        &mut self,
        grant: Arc<Grant>,
        now: DateTime<Utc>,
        life: Lifetimes,
    ) -> IssuedTokens {
        self.maybe_prune(now);
        let access_token = random_token(22);
        let refresh_token = random_token(22);
        let issued = IssuedTokens {
            access_token: access_token.clone(),
            refresh_token: refresh_token.clone(),
            issued_at: now,
            expires_at: now + life.access,
            refresh_token_expires_at: now + life.refresh,
            grant: grant.clone(),
        };
        self.access.insert(
            access_token.clone(),
            AccessRecord {
                grant: grant.clone(),
                expires_at: issued.expires_at,
                refresh_token: refresh_token.clone(),
            },
        );
        self.refresh.insert(
            refresh_token,
            RefreshRecord {
                grant,
                expires_at: issued.refresh_token_expires_at,
                access_token,
            },
        );
        issued
    }

    /// Rotation: the old refresh token dies at once, a new pair with fresh windows is issued.
    /// Returns `None` for an unknown, used, revoked, expired or foreign refresh token.
    pub fn rotate(
        &mut self,
        refresh_token: &str,
        mall_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
        life: Lifetimes,
        keep_old_access: bool,
    ) -> Option<IssuedTokens> {
        let ok = self.refresh.get(refresh_token).is_some_and(|r| {
            r.grant.mall_id == mall_id && r.grant.client_id == client_id && now < r.expires_at
        });
        if !ok {
            return None;
        }
        let old = self.refresh.remove(refresh_token)?;
        if !keep_old_access {
            self.access.remove(&old.access_token);
        }
        Some(self.issue_pair(old.grant, now, life))
    }

    /// The grant behind a bearer token used on `mall_id`.
    pub fn check_access(
        &self,
        token: &str,
        mall_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<Grant>, AccessError> {
        match self.access.get(token) {
            Some(r) if r.grant.mall_id == mall_id => {
                if now >= r.expires_at {
                    Err(AccessError::Expired)
                } else {
                    Ok(r.grant.clone())
                }
            }
            _ => Err(AccessError::Unknown),
        }
    }

    /// The token if the sandbox still holds it (access, or a refresh token not yet rotated).
    pub fn inspect(&self, token: &str) -> Option<TokenInfo> {
        let info = |kind, grant: &Grant, expires_at| TokenInfo {
            kind,
            mall_id: grant.mall_id.clone(),
            client_id: grant.client_id.clone(),
            expires_at,
        };
        if let Some(r) = self.access.get(token) {
            return Some(info(TokenKind::Access, &r.grant, r.expires_at));
        }
        self.refresh
            .get(token)
            .map(|r| info(TokenKind::Refresh, &r.grant, r.expires_at))
    }

    /// Revokes a token and its pair. Both kinds are looked up whatever the hint says (as
    /// RFC 7009 asks; token values never collide). Tokens of another mall or app are left alone.
    pub fn revoke(&mut self, token: &str, mall_id: &str, client_id: &str) -> bool {
        self.revoke_access(token, mall_id, client_id)
            || self.revoke_refresh(token, mall_id, client_id)
    }

    fn revoke_refresh(&mut self, token: &str, mall_id: &str, client_id: &str) -> bool {
        let owned = self
            .refresh
            .get(token)
            .is_some_and(|r| r.grant.mall_id == mall_id && r.grant.client_id == client_id);
        if owned {
            if let Some(r) = self.refresh.remove(token) {
                self.access.remove(&r.access_token);
            }
        }
        owned
    }

    fn revoke_access(&mut self, token: &str, mall_id: &str, client_id: &str) -> bool {
        let owned = self
            .access
            .get(token)
            .is_some_and(|a| a.grant.mall_id == mall_id && a.grant.client_id == client_id);
        if owned {
            if let Some(a) = self.access.remove(token) {
                self.refresh.remove(&a.refresh_token);
            }
        }
        owned
    }

    /// Removes every token and code of one app on one mall (app uninstalled).
    pub fn revoke_all(&mut self, mall_id: &str, client_id: &str) {
        let keep = |g: &Grant| !(g.mall_id == mall_id && g.client_id == client_id);
        self.access.retain(|_, r| keep(&r.grant));
        self.refresh.retain(|_, r| keep(&r.grant));
        self.codes.retain(|_, r| keep(&r.grant));
    }

    /// Number of live refresh tokens of a mall (for inspection).
    pub fn live_refresh_tokens(&self, mall_id: &str, now: DateTime<Utc>) -> usize {
        self.refresh
            .values()
            .filter(|r| r.grant.mall_id == mall_id && now < r.expires_at)
            .count()
    }

    /// Drops expired records now and then so long runs stay bounded.
    fn maybe_prune(&mut self, now: DateTime<Utc>) {
        self.issued_since_prune += 1;
        if self.issued_since_prune < 8192 {
            return;
        }
        self.issued_since_prune = 0;
        // Expired access tokens are kept a day longer so they still answer "time expired".
        let grace = Duration::days(1);
        self.access.retain(|_, r| now < r.expires_at + grace);
        self.refresh.retain(|_, r| now < r.expires_at);
        self.codes.retain(|_, r| now < r.expires_at);
    }
}
