//! A Cafe24 that misbehaves — absurd rate-limit headers — must neither crash the client nor
//! pause a mall for ever.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cafe24_client::Timer;
use serde_json::json;

use crate::fake::{fake, json};
use crate::support::{mall, rig, Time};

/// The documented longest pause a header can impose on a mall (docs/client.md).
const MAX_PAUSE: Duration = Duration::from_secs(600);

/// A 429 carrying `header: value`, then a success.
fn limited_once(header: &'static str, value: &'static str) -> impl Fn(&str, usize) -> Response {
    move |_, n| {
        if n == 0 {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": {"code": 429, "message": "Too Many Requests"}})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header, value.parse().expect("header value"));
            response
        } else {
            json(json!({ "count": 1 }))
        }
    }
}

#[tokio::test]
async fn absurd_rate_limit_headers_neither_panic_nor_pause_a_mall_past_the_bound() {
    let rig = rig(&[("shop", 0)], Time::Virtual, &[]).await;
    for header in [
        "x-cafe24-call-remain",
        "x-cafe24-time-remain",
        "retry-after",
    ] {
        for value in [
            "1e30",
            "1e309",
            "18446744073709551616",
            "99999999999999999999999999999",
            "86400000",
            "-5",
            "-1e30",
            "NaN",
            "inf",
            "-inf",
        ] {
            let upstream = fake(limited_once(header, value)).await;
            let (client, timer) =
                rig.client_for(&upstream.base_url, &[("CAFE24_API_DEADLINE_SECS", "3600")]);
            // A process that has been running for a while.
            let started = Duration::from_secs(3600);
            timer.advance(started);
            let shop = client.mall(mall("shop"));
            let call = tokio::spawn(async move { shop.products_count(&[]).await });
            let count = call
                .await
                .unwrap_or_else(|e| panic!("{header}: {value} crashed the call: {e}"))
                .unwrap_or_else(|e| panic!("{header}: {value}: {e}"));
            assert_eq!(count, 1);
            let paused = timer.now() - started;
            assert!(
                paused <= MAX_PAUSE + Duration::from_secs(1),
                "{header}: {value} paused the mall for {paused:?}"
            );
            assert_eq!(upstream.seen().len(), 2, "{header}: {value}");
        }
    }
}
