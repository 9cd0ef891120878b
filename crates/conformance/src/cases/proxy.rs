//! The Admin API through the proxy (`/internal/malls/{mall}/api/v2/admin/…`): the admin
//! credential, pacing under Cafe24's bucket, retries, and the 401 → one refresh rule.

use std::time::{Duration, Instant};

use cafe24_sandbox::FaultSpec;
use reqwest::Method;
use serde_json::json;

use crate::check::{Failure, Outcome};
use crate::flow::all_at_once;
use crate::world::World;

const BURST: usize = 50;

fn fault(w: &World<'_>, endpoint: &str, spec: FaultSpec) -> Result<(), Failure> {
    w.sandbox
        .set_fault(endpoint, spec)
        .map_err(|e| Failure::new(e.to_string()))
}

pub async fn requires_the_admin_credential(w: &World<'_>) -> Outcome {
    let mall = w.mall("proxy");
    w.install(&mall, 0).await?;
    let url = format!(
        "{}/internal/malls/{mall}/api/v2/admin/products/count",
        w.server(0)
    );
    let before = w.stats(&mall);
    let none = w.http.get(&url).send().await?;
    crate::ensure!(
        none.status() == 401,
        "without a credential the proxy answered {}, expected 401",
        none.status()
    );
    for (what, value) in [
        (
            "a wrong bearer token",
            format!("Bearer {}x", w.secrets.admin_token),
        ),
        (
            "the admin token as Basic",
            format!("Basic {}", w.secrets.admin_token),
        ),
        ("an empty bearer token", "Bearer ".to_owned()),
    ] {
        let answer = w
            .http
            .get(&url)
            .header("authorization", value)
            .send()
            .await?;
        crate::ensure!(
            matches!(answer.status().as_u16(), 401 | 403),
            "with {what} the proxy answered {}, expected 401 or 403",
            answer.status()
        );
    }
    let after = w.stats(&mall);
    crate::ensure!(
        after.api_calls == before.api_calls && after.refresh_grants == before.refresh_grants,
        "refused proxy calls reached Cafe24 ({} Admin API calls)",
        after.api_calls - before.api_calls
    );
    let outside = w
        .proxy(w.server(0), Method::GET, &mall, "/../oauth/token", None)
        .await?;
    crate::ensure!(
        outside.status != 200,
        "a path outside /api/v2/admin was forwarded: {}",
        outside.summary()
    );
    let unknown = w
        .proxy(
            w.server(0),
            Method::GET,
            &w.mall("never"),
            "/products/count",
            None,
        )
        .await?;
    crate::ensure!(
        unknown.status == 404,
        "a mall that was never installed answered {}, expected 404",
        unknown.summary()
    );
    let count = w.product_count(w.server(0), &mall).await?;
    Ok(format!(
        "401 without, refused when wrong; {count} products with the credential"
    ))
}

pub async fn pacing_keeps_a_burst_under_the_bucket(w: &World<'_>) -> Outcome {
    let mall = w.mall("burst");
    w.install(&mall, 0).await?;
    let before = w.stats(&mall);
    let started = Instant::now();
    let requests = (0..BURST)
        .map(|_| w.proxy_request(w.server(0), &mall, "/products/count"))
        .collect();
    let answers = all_at_once(requests).await;
    let took = started.elapsed();
    for answer in answers {
        let answer = answer?;
        crate::ensure!(
            answer.status == 200,
            "a call of the burst answered {}",
            answer.summary()
        );
    }
    let after = w.stats(&mall);
    let limited = after.rate_limited - before.rate_limited;
    let calls = after.api_calls - before.api_calls;
    crate::ensure!(
        limited == 0,
        "{BURST} concurrent calls through one process met {limited} × 429 at Cafe24 (bucket 40, 2/s): pacing must keep them under the bucket"
    );
    crate::ensure!(
        calls == BURST as u64,
        "Cafe24 saw {calls} calls for {BURST} proxied"
    );
    Ok(format!(
        "{BURST} calls in {:.1} s, 0 × 429",
        took.as_secs_f64()
    ))
}

pub async fn get_is_retried_after_503(w: &World<'_>) -> Outcome {
    let mall = w.mall("retry");
    w.install(&mall, 0).await?;
    let spec = FaultSpec {
        error_next: 1,
        error_status: Some(503),
        mall_id: Some(mall.clone()),
        ..FaultSpec::default()
    };
    fault(w, "products_count", spec)?;
    let before = w.stats(&mall);
    let count = w.product_count(w.server(0), &mall).await?;
    let injected = w.stats(&mall).faults_injected - before.faults_injected;
    crate::ensure!(
        injected == 1,
        "the 503 was injected {injected} times, expected once"
    );
    Ok(format!("503 then 200 ({count} products)"))
}

pub async fn post_is_not_retried(w: &World<'_>) -> Outcome {
    let mall = w.mall("post");
    w.install(&mall, 0).await?;
    // Two 503s are armed: a retry would meet the second.
    let spec = FaultSpec {
        error_next: 2,
        error_status: Some(503),
        mall_id: Some(mall.clone()),
        ..FaultSpec::default()
    };
    fault(w, "admin", spec)?;
    let before = w.stats(&mall);
    let body = json!({"shop_no": 1, "request": {"quantity": 1}});
    let answer = w
        .proxy(
            w.server(0),
            Method::POST,
            &mall,
            "/products/1/variants/P000000A000A",
            Some(body),
        )
        .await?;
    crate::ensure!(
        answer.status >= 500,
        "a POST answered 503 by Cafe24 came back as {}, expected Cafe24's 5xx",
        answer.summary()
    );
    // Longer than a first retry's backoff.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let injected = w.stats(&mall).faults_injected - before.faults_injected;
    crate::ensure!(
        injected == 1,
        "the POST was sent {injected} times after a 503, expected once (a POST is not retried)"
    );
    Ok(format!("sent once, answered {}", answer.status))
}

pub async fn unauthorized_from_cafe24_refreshes_once(w: &World<'_>) -> Outcome {
    let mall = w.mall("unauth");
    w.install(&mall, 0).await?;
    let before = w.stats(&mall);
    // Cafe24's clock runs past the access token's end; the target's does not: Cafe24 answers 401.
    let skew = chrono::Duration::seconds(w.sandbox.token_lifetimes().0 + 5);
    w.sandbox.advance_clock(skew);
    let result = w.product_count(w.server(0), &mall).await;
    w.sandbox.advance_clock(-skew);
    let count = result?;
    let after = w.stats(&mall);
    let refreshes = after.refresh_grants - before.refresh_grants;
    let calls = after.api_calls - before.api_calls;
    crate::ensure!(
        refreshes == 1 && calls == 2,
        "after a 401 from Cafe24: {refreshes} refresh(es) and {calls} call(s); expected one refresh and one retry (2 calls)"
    );
    Ok(format!("401, one refresh, retried: {count} products"))
}
