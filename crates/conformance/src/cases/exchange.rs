//! The exchange: a stored code is swapped for tokens within a second — whoever stored it — and
//! a code older than Cafe24's lifetime is never sent.

use std::time::{Duration, Instant};

use crate::check::Outcome;
use crate::db;
use crate::env::random_hex;
use crate::world::World;

/// The quality bar of the contract (Cafe24's own limit is 60 s).
const BAR: Duration = Duration::from_secs(1);

fn cleared(code: Option<&str>) -> bool {
    code.is_none_or(str::is_empty)
}

pub async fn code_is_exchanged_within_one_second(w: &World<'_>) -> Outcome {
    let mut slowest = Duration::ZERO;
    for i in 0..w.servers.len() {
        let mall = w.mall(&format!("exchange{i}"));
        let installed = w.install(&mall, i).await?;
        crate::ensure!(
            installed.exchanged_after <= BAR,
            "the code stored through process {} was exchanged {} ms after the callback, over the 1 s bar",
            i + 1,
            installed.exchanged_after.as_millis()
        );
        slowest = slowest.max(installed.exchanged_after);
        let grants = w.stats(&mall).authorization_code_grants;
        crate::ensure!(
            grants == 1,
            "Cafe24 saw {grants} authorization_code grants for {mall}, expected 1"
        );
        let rows = db::codes_with_state(w.db, &installed.state).await?;
        crate::ensure!(
            rows.len() == 1 && cleared(rows[0].code.as_deref()),
            "the used code is still in cafe24.authorization_codes (it must be cleared once used)"
        );
    }
    Ok(format!(
        "{} callback(s), slowest exchange {} ms after the callback",
        w.servers.len(),
        slowest.as_millis()
    ))
}

pub async fn code_from_another_writer_is_exchanged(w: &World<'_>) -> Outcome {
    let mall = w.mall("writer");
    let state = format!("serverless-{}", random_hex(16));
    let code = w.sandbox_code(&mall, &state).await?;
    let inserted = Instant::now();
    let id = db::insert_code(w.db, &code, &state, &mall, Duration::ZERO).await?;
    let row = db::wait_token_row(w.db, &mall, Duration::from_secs(5)).await?;
    crate::ensure!(
        row.is_some(),
        "a code inserted into cafe24.authorization_codes (code, state, mall_id) was not exchanged within 5 s"
    );
    let after = inserted.elapsed();
    let (stored, status) = db::code_status(w.db, id).await?;
    crate::ensure!(
        status.as_deref() == Some("exchanged") && cleared(stored.as_deref()),
        "after the exchange the row has status {status:?} and its code {}",
        if cleared(stored.as_deref()) {
            "cleared"
        } else {
            "still stored"
        }
    );
    Ok(format!(
        "exchanged {} ms after the INSERT",
        after.as_millis()
    ))
}

pub async fn expired_code_is_never_sent(w: &World<'_>) -> Outcome {
    let mall = w.mall("expired");
    let state = format!("serverless-{}", random_hex(16));
    // A code Cafe24 would still accept, stored as if 2 minutes ago: it must not be sent.
    let code = w.sandbox_code(&mall, &state).await?;
    let id = db::insert_code(w.db, &code, &state, &mall, Duration::from_secs(120)).await?;
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut status = None;
    while Instant::now() < deadline {
        status = db::code_status(w.db, id).await?.1;
        if status.as_deref() == Some("expired") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A little longer, for a sender that would be slower than the expiry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = w.stats(&mall);
    crate::ensure!(
        stats.authorization_code_grants == 0 && stats.codes_rejected == 0,
        "a code older than the 60 s lifetime was sent to Cafe24 ({} granted, {} rejected)",
        stats.authorization_code_grants,
        stats.codes_rejected
    );
    crate::ensure!(
        db::token_row(w.db, &mall).await?.is_none(),
        "an expired code produced tokens"
    );
    let (stored, status_now) = db::code_status(w.db, id).await?;
    crate::ensure!(
        status.as_deref() == Some("expired") && status_now.as_deref() == Some("expired"),
        "the old code's status is {status_now:?} after 4 s, expected \"expired\""
    );
    crate::ensure!(
        cleared(stored.as_deref()),
        "the expired code is still stored"
    );
    Ok("marked expired, never sent".into())
}
