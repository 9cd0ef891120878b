//! Tokens at rest: ciphertext the kit opens with the key ring and finds to be the tokens Cafe24
//! issued, with Cafe24's KST expiries stored as the instants they mean.

use cafe24_sandbox::TokenKind as Issued;
use chrono::{DateTime, Utc};

use crate::check::{Context, Failure, Outcome};
use crate::contract::crypto::TokenKind;
use crate::db::{self, TokenRow};
use crate::env::REFRESH_MARGIN_SECS;
use crate::world::World;

/// Opens both tokens of a row with the kit's key; checks the key id first.
pub fn open_row(w: &World<'_>, mall: &str, row: &TokenRow) -> Result<(String, String), Failure> {
    let key = &w.secrets.key;
    crate::ensure!(
        row.key_id == key.id,
        "the row's key_id is {:?}, expected {:?} (the first key of TOKEN_ENCRYPTION_KEYS)",
        row.key_id,
        key.id
    );
    let access = key
        .open(mall, TokenKind::Access, &row.access)
        .map_err(|e| Failure::new(format!("the access token ciphertext does not open: {e}")))?;
    let refresh = key
        .open(mall, TokenKind::Refresh, &row.refresh)
        .map_err(|e| Failure::new(format!("the refresh token ciphertext does not open: {e}")))?;
    w.remember_token(&access);
    w.remember_token(&refresh);
    Ok((access, refresh))
}

fn seconds_apart(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (a - b).num_seconds().abs()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub async fn stored_encrypted_with_the_key_ring(w: &World<'_>) -> Outcome {
    let mall = w.mall("rest");
    let installed = w.install(&mall, 0).await?;
    let row = db::token_row(w.db, &mall).await?.context("no token row")?;
    crate::ensure!(
        row.status == "active",
        "the new mall's status is {:?}, expected \"active\"",
        row.status
    );
    let (access, refresh) = open_row(w, &mall, &row)?;
    for (what, token, kind, stored) in [
        ("access", &access, Issued::Access, row.access_expires_at),
        ("refresh", &refresh, Issued::Refresh, row.refresh_expires_at),
    ] {
        let info = w.sandbox.token_info(token).context(&format!(
            "the decrypted {what} token is not one Cafe24 (the sandbox) holds for this app"
        ))?;
        crate::ensure!(
            info.kind == kind && info.mall_id == mall && info.client_id == w.secrets.client_id,
            "the decrypted {what} token is a {:?} token of mall {} (app {})",
            info.kind,
            info.mall_id,
            info.client_id
        );
        let apart = seconds_apart(stored, info.expires_at);
        crate::ensure!(
            apart <= 1,
            "{what}_expires_at is stored as {stored}, but Cafe24 meant {} ({}; Cafe24's times are KST without an offset)",
            info.expires_at,
            if (apart - 9 * 3600).abs() <= 1 { "9 hours off: read as UTC" } else { "off" }
        );
    }
    let dump = db::dump_schema(w.db).await?;
    for (what, value) in [
        ("the access token", access.as_str()),
        ("the refresh token", refresh.as_str()),
        ("the used authorization code", installed.code.as_str()),
    ] {
        crate::ensure!(
            !dump.contains(value) && !dump.contains(&hex(value)),
            "{what} appears in plain text in the cafe24 schema"
        );
    }
    Ok("AES-256-GCM under the kit's key; the tokens Cafe24 issued; expiries exact".into())
}

pub async fn expiry_is_korea_time_and_refreshed_before_use(w: &World<'_>) -> Outcome {
    let mall = w.mall("kst");
    let defaults = w.sandbox.token_lifetimes();
    // An access token that lives 120 s: inside the 300 s refresh margin from the start.
    w.sandbox
        .set_token_lifetimes(120, defaults.1)
        .map_err(|e| Failure::new(e.to_string()))?;
    let installed = w.install(&mall, 0).await;
    w.sandbox
        .set_token_lifetimes(defaults.0, defaults.1)
        .map_err(|e| Failure::new(e.to_string()))?;
    installed?;
    let row = db::token_row(w.db, &mall).await?.context("no token row")?;
    let left = (row.access_expires_at - Utc::now()).num_seconds();
    crate::ensure!(
        (100..=125).contains(&left),
        "Cafe24 issued an access token expiring in 120 s; the stored access_expires_at is {left} s away{}",
        if (left - 9 * 3600).abs() < 30 { " (9 hours off: expires_at read as UTC, not KST)" } else { "" }
    );
    let before = w.stats(&mall);
    let count = w.product_count(w.server(0), &mall).await?;
    let after = w.stats(&mall);
    let refreshes = after.refresh_grants - before.refresh_grants;
    let calls = after.api_calls - before.api_calls;
    crate::ensure!(
        refreshes == 1 && calls == 1,
        "a proxied call with an access token {left} s from expiry (margin {REFRESH_MARGIN_SECS} s) made {refreshes} refresh(es) and {calls} Admin API call(s); expected a refresh first, then 1 call (no 401)"
    );
    Ok(format!("refreshed before use; {count} products"))
}
