//! A Cafe24 that misbehaves — a paging cursor it ignores, absurd rate-limit headers — must
//! neither hang the client nor crash it nor pause a mall for ever.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cafe24_client::{Pages, Timer};
use serde_json::{json, Value};

use crate::fake::{fake, json};
use crate::support::{mall, rig, Time};

/// The documented longest pause a header can impose on a mall (docs/client.md).
const MAX_PAUSE: Duration = Duration::from_secs(600);
/// However the pager misbehaves, the test ends well before this.
const HANG: Duration = Duration::from_secs(30);

fn products(from: u64, n: u64) -> Value {
    let items: Vec<Value> = (from..from + n)
        .map(|no| json!({"product_no": no, "product_code": format!("P{no:07}"), "product_name": "x", "price": "1.00"}))
        .collect();
    json!({ "products": items })
}

#[tokio::test]
async fn a_products_cursor_that_does_not_advance_stops_paging_with_an_error() {
    let rig = rig(&[("shop", 0)], Time::Virtual, &[]).await;
    // Whatever offset or since_product_no is asked for, the same full page comes back.
    let upstream = fake(|_, _| json(products(1, 100))).await;
    let (client, _timer) = rig.client_for(&upstream.base_url, &[]);
    let mut pages = Pages::products(client.mall(mall("shop")), &[]).expect("pager");
    let first = pages.next_page().await.expect("first page").expect("items");
    assert_eq!(first.len(), 100);

    let next = tokio::time::timeout(HANG, pages.next_page())
        .await
        .expect("paging never ended: the same page was requested again and again");
    let err = next.expect_err("a page that brings nothing new is an error");
    assert!(err.to_string().contains("no progress"), "{err}");
    assert!(upstream.seen().len() <= 3, "{:?}", upstream.seen());
}

#[tokio::test]
async fn a_list_that_repeats_the_same_full_page_stops_with_an_error() {
    let rig = rig(&[("shop", 0)], Time::Virtual, &[]).await;
    let page = json!({ "customers": (1..=100).map(|id| json!({"member_id": format!("m{id}")})).collect::<Vec<_>>() });
    let upstream = fake(move |_, _| json(page.clone())).await;
    let (client, _timer) = rig.client_for(&upstream.base_url, &[]);
    let mut pages = Pages::list(client.mall(mall("shop")), "/customers", &[], 8000).expect("pager");
    assert_eq!(
        pages
            .next_page()
            .await
            .expect("first page")
            .map(|p| p.len()),
        Some(100)
    );
    let next = tokio::time::timeout(HANG, pages.next_page())
        .await
        .expect("paging never ended");
    let err = next.expect_err("the same full page again is no progress");
    assert!(err.to_string().contains("no progress"), "{err}");
    assert_eq!(upstream.seen().len(), 2);
}

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
