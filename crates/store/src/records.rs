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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeInsert {
    Stored { id: i64 },
    StateAlreadyUsed,
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
