//! `POST /webhooks/cafe24`: verified (fail closed), deduplicated, limited, acted upon (90077
//! revokes the mall), and refusing everything when verification is not configured.

use std::time::Duration;

use serde_json::{json, Value};

use crate::args::CommandLine;
use crate::check::{Context, Failure, Outcome};
use crate::db;
use crate::env::{listen, random_hex, TRACE_HEADER, WEBHOOK_HEADER};
use crate::fleet::{free_port, stop_all, Process, Spec};
use crate::world::{lock, Answer, World};

fn event(mall: &str, marker: &str) -> Value {
    json!({"event_no": 90001, "resource": {"mall_id": mall, "event_shop_no": "1", "product_no": "12", "conformance": marker}})
}

async fn deliver(
    w: &World<'_>,
    server: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<Answer, Failure> {
    let mut request = w
        .http
        .post(format!("{server}/webhooks/cafe24"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Answer::read(request.send().await.context("POST /webhooks/cafe24")?).await
}

pub async fn verified_delivery_is_stored_once(w: &World<'_>) -> Outcome {
    let marker = random_hex(12);
    let body = event(&w.mall("hook"), &marker).to_string();
    let trace = random_hex(16);
    let key = w.secrets.webhook_key.as_str();
    for (attempt, server) in w.servers.iter().chain(w.servers.iter().take(1)).enumerate() {
        let answer = deliver(
            w,
            server,
            body.as_bytes(),
            &[(WEBHOOK_HEADER, key), (TRACE_HEADER, &trace)],
        )
        .await?;
        crate::ensure!(
            answer.status == 200,
            "delivery {} with the right key answered {}, expected 200",
            attempt + 1,
            answer.summary()
        );
        let stored = db::webhook_events_with(w.db, &marker).await?;
        crate::ensure!(
            stored == 1,
            "after delivery {} of one event (same trace id) cafe24.webhook_events has {stored} rows, expected 1",
            attempt + 1
        );
    }
    // A retry without Cafe24's trace id is the same event too (same number, same body).
    let marker = random_hex(12);
    let body = event(&w.mall("hook"), &marker).to_string();
    for (attempt, server) in w.servers.iter().chain(w.servers.iter().take(1)).enumerate() {
        let answer = deliver(w, server, body.as_bytes(), &[(WEBHOOK_HEADER, key)]).await?;
        crate::ensure!(
            answer.status == 200,
            "delivery {} without a trace id answered {}",
            attempt + 1,
            answer.summary()
        );
    }
    let stored = db::webhook_events_with(w.db, &marker).await?;
    crate::ensure!(
        stored == 1,
        "one event delivered {} times without a trace id is stored {stored} times, expected once",
        w.servers.len() + 1
    );
    Ok(format!(
        "delivered {} times (with and without a trace id), stored once",
        w.servers.len() + 1
    ))
}

pub async fn unverified_delivery_is_403(w: &World<'_>) -> Outcome {
    let marker = random_hex(12);
    let body = event(&w.mall("forged"), &marker).to_string();
    let wrong = format!("{}x", w.secrets.webhook_key);
    let variants: [(&str, Vec<(&str, &str)>); 3] = [
        ("a wrong key", vec![(WEBHOOK_HEADER, wrong.as_str())]),
        ("no key", vec![]),
        (
            "the key in another header",
            vec![("X-Other-Key", w.secrets.webhook_key.as_str())],
        ),
    ];
    for (i, (what, headers)) in variants.iter().enumerate() {
        let answer = deliver(w, w.server(i), body.as_bytes(), headers).await?;
        crate::ensure!(
            answer.status == 403,
            "a delivery with {what} answered {}, expected 403",
            answer.summary()
        );
    }
    let stored = db::webhook_events_with(w.db, &marker).await?;
    crate::ensure!(stored == 0, "refused deliveries stored {stored} rows");
    Ok("403, nothing stored".into())
}

pub async fn oversized_body_is_413(w: &World<'_>) -> Outcome {
    let marker = random_hex(12);
    let mut body = event(&w.mall("huge"), &marker);
    body["resource"]["padding"] = Value::String("x".repeat(256 * 1024));
    let answer = deliver(
        w,
        w.server(0),
        body.to_string().as_bytes(),
        &[(WEBHOOK_HEADER, &w.secrets.webhook_key)],
    )
    .await?;
    crate::ensure!(
        answer.status == 413,
        "a 256 KiB delivery answered {}, expected 413",
        answer.summary()
    );
    let stored = db::webhook_events_with(w.db, &marker).await?;
    crate::ensure!(stored == 0, "the oversized delivery was stored");
    Ok("413".into())
}

pub async fn uninstall_event_revokes_the_mall(w: &World<'_>) -> Outcome {
    let mall = w.mall("uninstall");
    w.install(&mall, 0).await?;
    // Cafe24 removes the app: its tokens die and 90077 is delivered to the webhook URL.
    let report: Value = w
        .http
        .post(w.sandbox.url(&format!("/_sandbox/malls/{mall}/uninstall")))
        .json(&json!({"client_id": w.secrets.client_id}))
        .send()
        .await?
        .json()
        .await?;
    let delivered = report["deliveries"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["status"] == "delivered"));
    crate::ensure!(
        delivered,
        "Cafe24's 90077 delivery to the webhook URL did not succeed: {report}"
    );
    let status = db::wait_status(w.db, &mall, "revoked", Duration::from_secs(10)).await?;
    crate::ensure!(
        status.as_deref() == Some("revoked"),
        "10 s after the uninstall event (90077) the mall's status is {status:?}, expected \"revoked\""
    );
    Ok("delivered, mall revoked".into())
}

pub async fn unconfigured_receiver_refuses_everything(w: &World<'_>) -> Outcome {
    let port = free_port()?;
    let mut env = w.launcher.env.clone();
    env.extend(listen(port));
    let spec = Spec {
        name: "unconfigured-webhooks".into(),
        command: CommandLine::clone(&w.launcher.command),
        env,
        port,
        serves_http: true,
    };
    let mut process =
        Process::spawn(spec, &w.launcher.logs).map_err(|e| Failure::new(e.to_string()))?;
    lock(&w.extra_logs).extend([process.stdout.clone(), process.stderr.clone()]);
    let checked = async {
        process
            .wait_healthy(&w.http, w.launcher.startup)
            .await
            .map_err(|e| Failure::new(format!("a copy started without CAFE24_WEBHOOK_AUTH did not start: {e}")))?;
        let marker = random_hex(12);
        let body = event(&w.mall("closed"), &marker).to_string();
        let server = process.base_url();
        for (what, headers) in [
            ("the key", vec![(WEBHOOK_HEADER, w.secrets.webhook_key.as_str())]),
            ("no key", vec![]),
        ] {
            let answer = deliver(w, &server, body.as_bytes(), &headers).await?;
            crate::ensure!(
                answer.status == 403,
                "without webhook verification configured, a delivery with {what} answered {}, expected 403",
                answer.summary()
            );
        }
        let stored = db::webhook_events_with(w.db, &marker).await?;
        crate::ensure!(stored == 0, "the unconfigured receiver stored {stored} rows");
        Ok("403 until verification is configured".to_owned())
    }
    .await;
    stop_all(std::slice::from_mut(&mut process)).await;
    checked
}
