//! Retries: 429 storms, 5xx bursts, lost answers, non-idempotent POSTs, expired tokens.

use cafe24_client::{ApiError, Method, Request, VariantUpdate};
use cafe24_sandbox::FaultSpec;
use serde_json::json;

use crate::support::{mall, rig, Time};

#[tokio::test]
async fn a_429_storm_is_waited_out_with_one_attempt_per_429() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    rig.sandbox
        .set_fault(
            "products_count",
            FaultSpec {
                storm_next: 3,
                ..FaultSpec::default()
            },
        )
        .expect("fault");
    let shop = rig.mall("shop");
    let response = shop
        .send(&Request::get("/products/count").expect("path"))
        .await
        .expect("survives the storm");
    assert_eq!(response.attempts, 4);
    assert_eq!(response.body, json!({"count": 20}));
    let stats = rig.stats("shop");
    assert_eq!((stats.rate_limited, stats.faults_injected), (3, 3));
    assert_eq!(
        stats.api_calls, 1,
        "only the fourth attempt reached the mall"
    );
    let m = rig.client.metrics();
    assert_eq!((m.attempts("429"), m.attempts("200")), (3, 1));
    assert_eq!(m.retries("rate_limited"), 3);
    // Each 429 said "1 second": the mall paused that long each time.
    assert!(shop.pacer().stats().pauses >= 3);
    assert!(rig.virtual_now().as_secs() >= 3);
}

#[tokio::test]
async fn a_503_burst_is_retried_with_backoff_for_a_get() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    rig.sandbox
        .set_fault(
            "admin",
            FaultSpec {
                error_next: 3,
                error_status: Some(503),
                ..FaultSpec::default()
            },
        )
        .expect("fault");
    let products = rig.mall("shop").products(&[("limit", "5")]).await;
    assert_eq!(products.expect("survives the burst").len(), 5);
    let stats = rig.stats("shop");
    assert_eq!((stats.faults_injected, stats.api_calls), (3, 1));
    let m = rig.client.metrics();
    assert_eq!((m.attempts("503"), m.retries("server_error")), (3, 3));
    // Backoff 0.5 s, 1 s, 2 s with at least half of each kept: 1.75 virtual seconds or more.
    assert!(rig.virtual_now().as_millis() >= 1750);
}

#[tokio::test]
async fn attempts_are_bounded_and_the_last_cafe24_error_is_returned() {
    let rig = rig(
        &[("shop", 20)],
        Time::Virtual,
        &[("CAFE24_API_MAX_ATTEMPTS", "3")],
    )
    .await;
    rig.sandbox
        .set_fault(
            "store",
            FaultSpec {
                error_next: 10,
                error_status: Some(503),
                ..FaultSpec::default()
            },
        )
        .expect("fault");
    let err = rig.mall("shop").store().await.expect_err("gives up");
    assert!(
        matches!(
            &err,
            ApiError::Cafe24 {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(rig.stats("shop").faults_injected, 3);
    assert_eq!(rig.client.metrics().gave_up("attempts"), 1);
}

#[tokio::test]
async fn the_deadline_bounds_a_call() {
    let rig = rig(
        &[("shop", 20)],
        Time::Virtual,
        &[("CAFE24_API_DEADLINE_SECS", "2")],
    )
    .await;
    rig.sandbox
        .set_fault(
            "store",
            FaultSpec {
                error_next: 10,
                error_status: Some(500),
                ..FaultSpec::default()
            },
        )
        .expect("fault");
    let err = rig.mall("shop").store().await.expect_err("gives up");
    assert!(matches!(err, ApiError::Deadline { .. }), "{err:?}");
    assert!(err.attempts() < 6, "stopped by the deadline: {err:?}");
    assert_eq!(rig.client.metrics().gave_up("deadline"), 1);
}

#[tokio::test]
async fn a_post_is_not_retried_after_a_500_unless_marked_safe() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let fault = FaultSpec {
        error_next: 1,
        error_status: Some(500),
        ..FaultSpec::default()
    };
    rig.sandbox
        .set_fault("admin", fault.clone())
        .expect("fault");
    let post =
        Request::post("/products/1/variants/P00000BA000A", json!({"request": {}})).expect("path");
    let err = rig.mall("shop").send(&post).await.expect_err("500");
    assert!(
        matches!(
            &err,
            ApiError::Cafe24 {
                status: 500,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(rig.stats("shop").faults_injected, 1);
    assert_eq!(rig.client.metrics().retries("server_error"), 0);

    // The same POST marked safe by the caller is retried past the 500.
    rig.sandbox.set_fault("admin", fault).expect("fault");
    let err = rig
        .mall("shop")
        .send(&post.retry_safe())
        .await
        .expect_err("the sandbox has no POST here");
    assert_eq!(err.attempts(), 2, "{err:?}");
    assert_ne!(err.status(), Some(500));
    assert_eq!(rig.client.metrics().retries("server_error"), 1);
}

#[tokio::test]
async fn a_put_is_retried_after_a_500_and_updates_the_inventory() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let shop = rig.mall("shop");
    let variant = shop.variants(3).await.expect("variants").remove(0);
    rig.sandbox
        .set_fault(
            "variant",
            FaultSpec {
                error_next: 1,
                ..FaultSpec::default()
            },
        )
        .expect("fault");
    let update = VariantUpdate {
        quantity: Some(77),
        use_inventory: Some("T"),
        ..VariantUpdate::default()
    };
    let updated = shop
        .update_variant(3, &variant.variant_code, &update)
        .await
        .expect("retried");
    assert_eq!(updated.variant_code, variant.variant_code);
    assert_eq!(updated.rest["inventories"]["quantity"], json!(77));
    let again = shop.variants(3).await.expect("variants");
    let same = again
        .iter()
        .find(|v| v.variant_code == variant.variant_code)
        .expect("variant");
    assert_eq!(same.quantity, Some(77));
    assert_eq!(rig.client.metrics().retries("server_error"), 1);
}

#[tokio::test]
async fn a_lost_answer_is_retried_for_a_get() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    rig.sandbox
        .set_fault(
            "product",
            FaultSpec {
                drop_next: 1,
                ..FaultSpec::default()
            },
        )
        .expect("fault");
    let product = rig.mall("shop").product(7).await.expect("retried");
    assert_eq!(product.product_no, 7);
    let m = rig.client.metrics();
    assert_eq!((m.attempts("transport"), m.retries("transport")), (1, 1));
}

#[tokio::test]
async fn a_401_for_an_expired_token_triggers_exactly_one_refresh() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let before = rig
        .manager
        .access_token(&mall("shop"))
        .await
        .expect("token");
    // Cafe24's clock passes the token's expiry; ours (the manager's) does not know.
    rig.timer
        .as_ref()
        .expect("virtual")
        .advance(std::time::Duration::from_secs(7300));
    let response = rig
        .mall("shop")
        .send(&Request::get("/store").expect("path"))
        .await
        .expect("refreshed and retried");
    assert_eq!(response.attempts, 2);
    assert_eq!(response.body["store"]["mall_id"], json!("shop"));
    assert_eq!(rig.stats("shop").refresh_grants, 1);
    assert_eq!(rig.client.metrics().retries("unauthorized"), 1);
    let after = rig
        .manager
        .access_token(&mall("shop"))
        .await
        .expect("token");
    assert_ne!(after.expose_secret(), before.expose_secret());
    // The next call uses the new token: no second refresh.
    rig.mall("shop").store().await.expect("store");
    assert_eq!(rig.stats("shop").refresh_grants, 1);
}

#[tokio::test]
async fn cafe24_errors_are_typed_and_never_show_the_token() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let token = rig
        .manager
        .access_token(&mall("shop"))
        .await
        .expect("token");
    let shop = rig.mall("shop");
    let err = shop.products(&[("limit", "101")]).await.expect_err("422");
    match &err {
        ApiError::Cafe24 {
            status,
            code,
            message,
            attempts,
            ..
        } => {
            assert_eq!((*status, code.as_deref(), *attempts), (422, Some("422"), 1));
            assert!(message.contains("limit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let err404 = shop.product(999_999).await.expect_err("404");
    assert_eq!(err404.status(), Some(404));
    let generic = shop
        .call(Method::GET, "/nope", &[], None)
        .await
        .expect_err("404");
    for shown in [
        format!("{err:?} {err}"),
        format!("{err404:?}"),
        format!("{generic:?}"),
        format!("{:?} {:?}", rig.client, shop),
    ] {
        assert!(
            !shown.contains(token.expose_secret()),
            "token leaked: {shown}"
        );
    }
}

#[tokio::test]
async fn a_429_storm_longer_than_the_attempt_budget_is_waited_out() {
    let rig = rig(
        &[("shop", 20)],
        Time::Virtual,
        &[("CAFE24_API_MAX_ATTEMPTS", "2")],
    )
    .await;
    let storm = FaultSpec {
        storm_next: 5,
        ..FaultSpec::default()
    };
    rig.sandbox.set_fault("store", storm).expect("fault");
    rig.mall("shop")
        .store()
        .await
        .expect("429s only delay the call");
    let m = rig.client.metrics();
    assert_eq!((m.attempts("429"), m.attempts("200")), (5, 1));
    assert_eq!(m.gave_up("attempts"), 0);
}
