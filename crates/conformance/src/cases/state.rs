//! The signed `state` at the callback: states the kit signs itself from the layout — valid,
//! forged, truncated, expired, from another secret — and single use across processes.

use crate::check::Outcome;
use crate::contract::state::{mint, sign_body};
use crate::db;
use crate::env::{random_hex, STATE_TTL_SECS};
use crate::flow::all_at_once;
use crate::world::World;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub async fn forged_states_are_refused(w: &World<'_>) -> Outcome {
    let mall = w.mall("forged");
    let secret = &w.secrets.state_secret;
    let valid = mint(secret, &mall, now());
    let other_mall = mint(secret, &w.mall("other"), now());
    let (_, tag) = other_mall.rsplit_once('.').unwrap_or_default();
    let (body, _) = valid.rsplit_once('.').unwrap_or_default();
    // Correct MACs over bodies of another layout: only v1 with five fields is the contract.
    let v2 = sign_body(secret, &body.replacen("v1.", "v2.", 1));
    let extra_field = sign_body(secret, &format!("{body}.extra"));
    let variants = [
        ("a made-up state", "forged-state".to_owned()),
        (
            "a state signed with another secret",
            mint(&random_hex(32), &mall, now()),
        ),
        ("a truncated state", valid[..valid.len() - 4].to_owned()),
        (
            "a state whose MAC belongs to another state",
            format!("{body}.{tag}"),
        ),
        (
            "an expired state with a valid MAC",
            mint(secret, &mall, now() - STATE_TTL_SECS - 120),
        ),
        (
            "a state issued an hour in the future",
            mint(secret, &mall, now() + 3600),
        ),
        ("a validly signed state of layout v2", v2),
        ("a validly signed state with a sixth field", extra_field),
        (
            "a validly signed state naming an invalid mall",
            mint(secret, "Evil.com", now()),
        ),
        ("a state without its MAC", body.to_owned()),
    ];
    for (i, (what, state)) in variants.iter().enumerate() {
        let code = random_hex(11);
        let answer = w.callback(w.server(i), &code, state).await?;
        crate::ensure!(
            answer.status == 400,
            "the callback with {what} answered {}, expected 400",
            answer.summary()
        );
        crate::ensure!(
            db::codes_with_code(w.db, &code).await? == 0
                && db::codes_with_state(w.db, state).await?.is_empty(),
            "the callback refused {what} but stored its code in cafe24.authorization_codes"
        );
    }
    Ok(format!(
        "{} forged states refused, nothing stored",
        variants.len()
    ))
}

pub async fn a_state_is_accepted_once(w: &World<'_>) -> Outcome {
    let mall = w.mall("once");
    let state = mint(&w.secrets.state_secret, &mall, now());
    w.remember_state(&state);
    let first = w.sandbox_code(&mall, &state).await?;
    let answer = w.callback(w.server(0), &first, &state).await?;
    crate::ensure!(
        answer.status == 200,
        "a state the kit signed per the layout was refused: {} (is the layout v1.{{mall}}.{{issued_at}}.{{nonce}}.{{mac}}?)",
        answer.summary()
    );
    let second = w.sandbox_code(&mall, &state).await?;
    for (i, code) in [&second, &first].into_iter().enumerate() {
        let answer = w.callback(w.server(i + 1), code, &state).await?;
        crate::ensure!(
            answer.status == 409,
            "a replayed state (attempt {}) answered {}, expected 409",
            i + 2,
            answer.summary()
        );
    }
    let rows = db::codes_with_state(w.db, &state).await?;
    crate::ensure!(
        rows.len() == 1,
        "{} rows carry the state, expected 1",
        rows.len()
    );
    crate::ensure!(
        db::codes_with_code(w.db, &second).await? == 0,
        "the code of a replayed state was stored"
    );
    Ok("accepted once, then 409".into())
}

pub async fn concurrent_replay_has_one_winner(w: &World<'_>) -> Outcome {
    let mall = w.mall("race");
    let state = mint(&w.secrets.state_secret, &mall, now());
    w.remember_state(&state);
    let code = w.sandbox_code(&mall, &state).await?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", &state)
        .finish();
    let attempts = (8 * w.servers.len()).max(24);
    let requests = (0..attempts)
        .map(|i| {
            w.http
                .get(format!("{}/oauth/callback?{query}", w.server(i)))
        })
        .collect();
    let answers = all_at_once(requests).await;
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for answer in &answers {
        let key = match answer {
            Ok(a) => a.status.to_string(),
            Err(e) => format!("error ({})", e.message()),
        };
        *statuses.entry(key).or_default() += 1;
    }
    let ok = statuses.get("200").copied().unwrap_or(0);
    let conflicts = statuses.get("409").copied().unwrap_or(0);
    crate::ensure!(
        ok == 1 && conflicts == attempts - 1,
        "{attempts} concurrent callbacks with one state across {} process(es) got {statuses:?}, expected one 200 and {} × 409",
        w.servers.len(),
        attempts - 1
    );
    let rows = db::codes_with_state(w.db, &state).await?;
    crate::ensure!(
        rows.len() == 1,
        "{} rows carry the state, expected 1",
        rows.len()
    );
    Ok(format!(
        "{attempts} concurrent callbacks: one 200, {conflicts} × 409"
    ))
}
