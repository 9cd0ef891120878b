//! `GET /oauth/callback`: the serverless spec's answer, refusals that store nothing, and
//! `Cache-Control: no-store` on every answer.

use serde_json::Value;

use crate::check::{Context, Outcome};
use crate::contract::state::mint;
use crate::db;
use crate::env::random_hex;
use crate::world::{Answer, World};

fn no_store(answer: &Answer) -> bool {
    answer
        .header("cache-control")
        .is_some_and(|v| v.to_ascii_lowercase().contains("no-store"))
}

fn fresh_state(w: &World<'_>, slug: &str) -> String {
    let state = mint(
        &w.secrets.state_secret,
        &w.mall(slug),
        chrono::Utc::now().timestamp(),
    );
    w.remember_state(&state);
    state
}

pub async fn success_is_the_contract_json(w: &World<'_>) -> Outcome {
    let mall = w.mall("saved");
    let state = fresh_state(w, "saved");
    let code = w.sandbox_code(&mall, &state).await?;
    let answer = w.callback(w.server(0), &code, &state).await?;
    crate::ensure!(
        answer.status == 200,
        "the callback answered {}, expected 200",
        answer.summary()
    );
    let body = answer.json().context(&format!(
        "the callback's body is not JSON: {}",
        answer.summary()
    ))?;
    let id = body["id"]
        .as_i64()
        .context(&format!("the body has no integer id: {body}"))?;
    let expected = serde_json::json!({"ok": true, "message": "Saved", "id": id});
    crate::ensure!(
        body == expected,
        "the body is {body}, expected exactly {expected}"
    );
    crate::ensure!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "Content-Type is {:?}, expected application/json",
        answer.header("content-type")
    );
    crate::ensure!(
        no_store(&answer),
        "the success lacks Cache-Control: no-store"
    );
    let rows = db::codes_with_state(w.db, &state).await?;
    crate::ensure!(
        rows.iter().map(|r| r.id).collect::<Vec<_>>() == [id],
        "cafe24.authorization_codes has ids {:?} for the state, expected [{id}]",
        rows.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    Ok(format!("{body}"))
}

/// Every query must be refused with `status`, store nothing and carry no-store.
async fn refused(w: &World<'_>, cases: &[(&str, String)], status: u16) -> Outcome {
    let before = db::codes_count(w.db).await?;
    for (i, (what, query)) in cases.iter().enumerate() {
        let answer = w.callback_raw(w.server(i), query).await?;
        crate::ensure!(
            answer.status == status,
            "a callback with {what} answered {}, expected {status}",
            answer.summary()
        );
        crate::ensure!(
            no_store(&answer),
            "the refusal of {what} lacks Cache-Control: no-store"
        );
        if let Some(Value::Object(body)) = answer.json() {
            crate::ensure!(
                body.get("ok") == Some(&Value::Bool(false)),
                "the refusal of {what} has a body without \"ok\": false"
            );
        }
    }
    let after = db::codes_count(w.db).await?;
    crate::ensure!(
        after == before,
        "refused callbacks stored {} rows",
        after - before
    );
    Ok(format!("{} refusals, nothing stored", cases.len()))
}

pub async fn missing_or_malformed_parameters_are_400(w: &World<'_>) -> Outcome {
    let state = fresh_state(w, "missing");
    let code = random_hex(11);
    let cases = [
        ("no parameters", String::new()),
        ("only a code", format!("code={code}")),
        ("only a state", format!("state={state}")),
        ("an empty code", format!("code=&state={state}")),
        ("an empty state", format!("code={code}&state=")),
        (
            "the code given twice",
            format!("code={code}&code={code}x&state={state}"),
        ),
        (
            "the state given twice",
            format!("code={code}&state={state}&state={state}"),
        ),
        (
            "a code with a NUL byte",
            format!("code={code}%00&state={state}"),
        ),
    ];
    refused(w, &cases, 400).await
}

pub async fn denied_consent_is_403(w: &World<'_>) -> Outcome {
    let state = fresh_state(w, "denied");
    let cases = [
        (
            "error=access_denied",
            format!("error=access_denied&state={state}"),
        ),
        (
            "error=access_denied and a description",
            format!("error=access_denied&error_description=The+user+denied&state={state}"),
        ),
    ];
    refused(w, &cases, 403).await?;
    crate::ensure!(
        db::codes_with_state(w.db, &state).await?.is_empty(),
        "a denied consent stored a row"
    );
    Ok("403, nothing stored".into())
}

pub async fn oversized_input_is_4xx(w: &World<'_>) -> Outcome {
    let state = fresh_state(w, "oversized");
    let before = db::codes_count(w.db).await?;
    let big = "a".repeat(8 * 1024);
    let cases = [
        ("an 8 KiB code", format!("code={big}&state={state}")),
        (
            "an 8 KiB state",
            format!("code={}&state={big}", random_hex(11)),
        ),
        (
            "a 32 KiB query",
            format!(
                "code={}&state={state}&pad={}",
                random_hex(11),
                "b".repeat(32 * 1024)
            ),
        ),
    ];
    for (i, (what, query)) in cases.iter().enumerate() {
        let url = format!("{}/oauth/callback?{query}", w.server(i));
        match w.http.get(&url).send().await {
            Ok(response) => {
                let answer = Answer::read(response).await?;
                crate::ensure!(
                    (400..500).contains(&answer.status),
                    "a callback with {what} answered {}, expected a 4xx",
                    answer.status
                );
            }
            // Closing the connection on an oversized request line is a refusal too.
            Err(e) if e.is_request() || e.is_connect() || e.is_body() => {}
            Err(e) => return Err(e.without_url().into()),
        }
        let health = w.get(&format!("{}/healthz", w.server(i))).await?;
        crate::ensure!(
            health.status == 200,
            "after {what} the process answers /healthz with {}",
            health.status
        );
    }
    let after = db::codes_count(w.db).await?;
    crate::ensure!(
        after == before,
        "oversized callbacks stored {} rows",
        after - before
    );
    Ok("refused, nothing stored, still serving".into())
}
