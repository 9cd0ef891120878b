//! Rows as the rest of the runtime sees them.

use std::fmt;

use cafe24_core::secret::AuthorizationCode;
use cafe24_core::MallId;
use chrono::{DateTime, Utc};

use crate::StoreError;

/// What the callback stores.
#[derive(Debug, Clone, Copy)]
pub struct NewAuthorizationCode<'a> {
    pub code: &'a AuthorizationCode,
    pub state: &'a str,
    pub mall_id: &'a MallId,
    /// Refuse the code when the mall already has this many codes waiting for exchange (a flood
    /// of minted states must not crowd out a genuine install).
    pub max_pending: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeInsert {
    Stored {
        id: i64,
    },
    StateAlreadyUsed,
    /// The mall already has `max_pending` codes waiting; nothing was stored.
    TooManyPending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStatus {
    Pending,
    Processing,
    Exchanged,
    Expired,
    Failed,
}

impl CodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeStatus::Pending => "pending",
            CodeStatus::Processing => "processing",
            CodeStatus::Exchanged => "exchanged",
            CodeStatus::Expired => "expired",
            CodeStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        Ok(match raw {
            "pending" => CodeStatus::Pending,
            "processing" => CodeStatus::Processing,
            "exchanged" => CodeStatus::Exchanged,
            "expired" => CodeStatus::Expired,
            "failed" => CodeStatus::Failed,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown code status {other:?}"
                )))
            }
        })
    }
}

/// A stored authorization code. `code` is `None` once it has been used and cleared.
#[derive(Clone)]
pub struct AuthorizationCodeRecord {
    pub id: i64,
    pub code: Option<AuthorizationCode>,
    pub state: String,
    pub mall_id: Option<MallId>,
    pub status: CodeStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for AuthorizationCodeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCodeRecord")
            .field("id", &self.id)
            .field("code", &self.code)
            .field("state", &"[redacted]")
            .field("mall_id", &self.mall_id)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("created_at", &self.created_at)
            .field("processed_at", &self.processed_at)
            .finish()
    }
}

/// The raw columns shared by both backends' `SELECT`s.
pub(crate) type CodeRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    i32,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

pub(crate) const CODE_COLUMNS: &str =
    "id, code, state, mall_id, status, attempts, last_error, created_at, processed_at";

impl TryFrom<CodeRow> for AuthorizationCodeRecord {
    type Error = StoreError;
    fn try_from(row: CodeRow) -> Result<Self, StoreError> {
        let (id, code, state, mall_id, status, attempts, last_error, created_at, processed_at) =
            row;
        Ok(Self {
            id,
            code: (!code.is_empty()).then(|| AuthorizationCode::new(code)),
            state,
            mall_id: mall_id
                .map(|m| MallId::parse(&m).map_err(|e| StoreError::Corrupt(e.to_string())))
                .transpose()?,
            status: CodeStatus::parse(&status)?,
            attempts,
            last_error,
            created_at,
            processed_at,
        })
    }
}

/// One claim on a queued code: the row and the attempt number the claim set. Every update a
/// worker makes after its claim is fenced by both, so a worker whose lease ran out can neither
/// reset another worker's claim nor undo an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeClaim {
    pub id: i64,
    pub attempt: i32,
}

/// A code claimed for exchange.
#[derive(Debug, Clone)]
pub struct ClaimedCode {
    pub id: i64,
    pub code: AuthorizationCode,
    pub mall_id: MallId,
    /// How old the code was when claimed, by the database's clock.
    pub age: std::time::Duration,
    pub attempts: i32,
}

impl ClaimedCode {
    pub fn claim(&self) -> CodeClaim {
        CodeClaim {
            id: self.id,
            attempt: self.attempts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MallStatus {
    Active,
    NeedsReauth,
    Revoked,
}

impl MallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MallStatus::Active => "active",
            MallStatus::NeedsReauth => "needs_reauth",
            MallStatus::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        Ok(match raw {
            "active" => MallStatus::Active,
            "needs_reauth" => MallStatus::NeedsReauth,
            "revoked" => MallStatus::Revoked,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown mall status {other:?}"
                )))
            }
        })
    }
}

/// Encrypted tokens to write (after an exchange or a refresh). The store never sees plaintext.
#[derive(Debug, Clone)]
pub struct NewTokens {
    pub mall_id: MallId,
    pub shop_no: Option<String>,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub key_id: String,
    pub access_ciphertext: Vec<u8>,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_ciphertext: Vec<u8>,
    pub refresh_expires_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    /// Written as the row's `last_error` (`None` clears it): e.g. a token response that did not
    /// fully parse, whose tokens were kept with conservative expiries.
    pub note: Option<String>,
}

/// A mall's stored token row.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub mall_id: MallId,
    pub shop_no: Option<String>,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub key_id: String,
    pub access_ciphertext: Vec<u8>,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_ciphertext: Vec<u8>,
    pub refresh_expires_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub status: MallStatus,
    /// Incremented by every write of new tokens: the compare-and-swap guard.
    pub version: i64,
    /// Set when a refresh is sent, cleared when its result is stored: a refresh in flight (or
    /// lost in a crash) is visible.
    pub refresh_started_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When the current grant was installed (its code exchanged): an uninstall event older
    /// than this belongs to an earlier grant.
    pub installed_at: DateTime<Utc>,
}

/// Something that happened to a mall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MallEvent {
    pub id: i64,
    pub mall_id: MallId,
    pub kind: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

pub(crate) const TOKEN_COLUMNS: &str = "mall_id, shop_no, user_id, client_id, scopes, key_id, access_token, \
     access_expires_at, refresh_token, refresh_expires_at, issued_at, status, version, refresh_started_at, \
     last_refreshed_at, last_error, installed_at";

/// The raw columns of [`TOKEN_COLUMNS`], shared by both backends.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    mall_id: String,
    shop_no: Option<String>,
    user_id: Option<String>,
    client_id: String,
    scopes: String,
    key_id: String,
    access_token: Vec<u8>,
    access_expires_at: DateTime<Utc>,
    refresh_token: Vec<u8>,
    refresh_expires_at: DateTime<Utc>,
    issued_at: Option<DateTime<Utc>>,
    status: String,
    version: i64,
    refresh_started_at: Option<DateTime<Utc>>,
    last_refreshed_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    installed_at: DateTime<Utc>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(Self {
            mall_id: parse_mall(&r.mall_id)?,
            shop_no: r.shop_no,
            user_id: r.user_id,
            client_id: r.client_id,
            scopes: split_scopes(&r.scopes),
            key_id: r.key_id,
            access_ciphertext: r.access_token,
            access_expires_at: r.access_expires_at,
            refresh_ciphertext: r.refresh_token,
            refresh_expires_at: r.refresh_expires_at,
            issued_at: r.issued_at,
            status: MallStatus::parse(&r.status)?,
            version: r.version,
            refresh_started_at: r.refresh_started_at,
            last_refreshed_at: r.last_refreshed_at,
            last_error: r.last_error,
            installed_at: r.installed_at,
        })
    }
}

/// `id, code, mall_id, age in seconds, attempts` of a claimed code, on both backends.
pub(crate) type ClaimRow = (i64, String, String, f64, i32);

impl TryFrom<ClaimRow> for ClaimedCode {
    type Error = StoreError;
    fn try_from((id, code, mall, age, attempts): ClaimRow) -> Result<Self, StoreError> {
        Ok(ClaimedCode {
            id,
            code: AuthorizationCode::new(code),
            mall_id: parse_mall(&mall)?,
            age: std::time::Duration::from_secs_f64(age.max(0.0)),
            attempts,
        })
    }
}

pub(crate) type EventRow = (i64, String, String, String, DateTime<Utc>);

impl TryFrom<EventRow> for MallEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.0,
            mall_id: parse_mall(&r.1)?,
            kind: r.2,
            detail: r.3,
            created_at: r.4,
        })
    }
}

pub(crate) fn split_scopes(raw: &str) -> Vec<String> {
    raw.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn parse_mall(raw: &str) -> Result<MallId, StoreError> {
    MallId::parse(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A webhook delivery to store.
#[derive(Debug, Clone, Copy)]
pub struct NewWebhookEvent<'a> {
    /// Unique per delivery: Cafe24's trace id, or a digest of event number and body.
    pub dedupe_key: &'a str,
    pub mall_id: &'a MallId,
    pub event_no: i32,
    pub trace_id: Option<&'a str>,
    /// The raw JSON body as received.
    pub body: &'a str,
    /// When Cafe24 says the event happened (a delivery log's `requested_time`), if known.
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookInsert {
    Stored {
        id: i64,
    },
    /// The same delivery was stored before (a retry by Cafe24).
    Duplicate {
        id: i64,
    },
}

/// A delivery found in Cafe24's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedDelivery {
    /// We never received it: now stored (and confirmed).
    Recovered { id: i64 },
    /// We had it: now confirmed.
    Confirmed { id: i64 },
}

/// What became of one dispatch attempt.
#[derive(Debug, Clone)]
pub enum DispatchOutcome {
    Dispatched,
    Retry { error: String, at: DateTime<Utc> },
    DeadLetter { error: String },
}

#[derive(Debug, Clone)]
pub struct WebhookEventRecord {
    pub id: i64,
    pub dedupe_key: String,
    pub mall_id: MallId,
    pub event_no: i32,
    pub trace_id: Option<String>,
    pub body: String,
    /// `received`, `retry`, `dispatched` or `dead_letter`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub received_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub dispatched_at: Option<DateTime<Utc>>,
    /// `received` (over HTTP) or `reconciled` (recovered from Cafe24's logs).
    pub source: String,
    /// When the event happened at Cafe24: the logged time when known, else when it was received.
    pub occurred_at: DateTime<Utc>,
}

pub(crate) const WEBHOOK_COLUMNS: &str =
    "id, dedupe_key, mall_id, event_no, trace_id, body, status, attempts, \
     last_error, received_at, confirmed_at, dispatched_at, source, occurred_at";

pub(crate) type WebhookRow = (
    i64,
    String,
    String,
    i32,
    Option<String>,
    String,
    String,
    i32,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    String,
    Option<DateTime<Utc>>,
);

impl TryFrom<WebhookRow> for WebhookEventRecord {
    type Error = StoreError;
    fn try_from(r: WebhookRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.0,
            dedupe_key: r.1,
            mall_id: parse_mall(&r.2)?,
            event_no: r.3,
            trace_id: r.4,
            body: r.5,
            status: r.6,
            attempts: r.7,
            last_error: r.8,
            received_at: r.9,
            confirmed_at: r.10,
            dispatched_at: r.11,
            source: r.12,
            occurred_at: r.13.unwrap_or(r.9),
        })
    }
}
