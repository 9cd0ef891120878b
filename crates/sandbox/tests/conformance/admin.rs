//! CAFE24.md §4: Admin API conventions, products, variants, store, webhook setting.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn missing_or_unknown_token_is_401_invalid_access_token() {
    let t = spawn().await;
    let resp = t
        .http
        .get(t.mall_url("/api/v2/admin/products"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = t.admin_json("not-a-token", "/products").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(envelope_message(&body, 401), "Invalid access_token");
}

#[tokio::test]
async fn expired_access_token_is_401_time_expired() {
    let t = spawn().await;
    t.sb.freeze_clock();
    let token = t.access_token().await;
    t.sb.advance_clock(chrono::Duration::hours(2));
    let (status, body) = t.admin_json(&token, "/products").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        envelope_message(&body, 401),
        "access_token time expired. (invalid_token)"
    );
}

#[tokio::test]
async fn token_of_another_mall_is_rejected() {
    let t = spawn().await;
    t.sb.add_mall(cafe24_sandbox::MallConfig {
        mall_id: "othermall".into(),
        ..Default::default()
    })
    .expect("mall");
    let token = t.access_token().await;
    let resp = t
        .http
        .get(t.sb.url("/malls/othermall/api/v2/admin/store"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_scope_is_403() {
    let t = spawn_with(|c| c.auto_approve = true).await;
    let resp = t
        .http
        .get(t.authorize_url("s", "mall.read_store", REDIRECT))
        .send()
        .await
        .expect("get");
    let code = location_query(&resp).remove("code").expect("code");
    let body: Value = t.exchange(&code).await.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(t.admin_get(token, "/store").await.status(), StatusCode::OK);
    let (status, body) = t.admin_json(token, "/products").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(envelope_message(&body, 403).contains("mall.read_product"));
}

#[tokio::test]
async fn products_default_to_10_in_fixture_shapes() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (status, body) = t.admin_json(&token, "/products").await;
    assert_eq!(status, StatusCode::OK);
    let products = body["products"].as_array().expect("array");
    assert_eq!(products.len(), 10);
    let p = &products[0];
    assert_eq!(p["shop_no"], 1);
    let code = p["product_code"].as_str().expect("code");
    assert_eq!(code.len(), 8);
    assert!(code.starts_with('P'));
    assert!(p["price"].as_str().expect("money string").ends_with(".00"));
    assert!(p["display"] == "T" || p["display"] == "F");
    assert!(p["created_date"]
        .as_str()
        .expect("date")
        .ends_with("+09:00"));
    let nos: Vec<u64> = products
        .iter()
        .map(|p| p["product_no"].as_u64().expect("no"))
        .collect();
    assert_eq!(nos, (41..=50).rev().collect::<Vec<u64>>());
}

#[tokio::test]
async fn limit_over_100_is_422() {
    let t = spawn().await;
    let token = t.access_token().await;
    for bad in [
        "/products?limit=101",
        "/products?limit=0",
        "/products?limit=abc",
    ] {
        let (status, body) = t.admin_json(&token, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        envelope_message(&body, 422);
    }
    let (status, body) = t.admin_json(&token, "/products?limit=100").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["products"].as_array().expect("array").len(), 50);
}

#[tokio::test]
async fn offset_over_5000_is_422_and_past_the_end_is_empty() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (status, _) = t.admin_json(&token, "/products?offset=5001").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = t.admin_json(&token, "/products?offset=5000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"products": []}));
    let (_, body) = t.admin_json(&token, "/products?offset=45").await;
    assert_eq!(body["products"].as_array().expect("array").len(), 5);
}

#[tokio::test]
async fn since_product_no_pages_by_key_and_excludes_offset_sort_order_product_no() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (_, body) = t
        .admin_json(&token, "/products?since_product_no=45&limit=3")
        .await;
    let nos: Vec<u64> = body["products"]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["product_no"].as_u64().expect("no"))
        .collect();
    assert_eq!(nos, vec![46, 47, 48]);
    for combo in ["offset=1", "sort=created_date", "order=asc", "product_no=1"] {
        let (status, _) = t
            .admin_json(&token, &format!("/products?since_product_no=1&{combo}"))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{combo}");
    }
}

#[tokio::test]
async fn comma_lists_mean_or_and_count_uses_the_same_filters() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (_, body) = t.admin_json(&token, "/products?product_no=3,1,2,999").await;
    let mut nos: Vec<u64> = body["products"]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["product_no"].as_u64().expect("no"))
        .collect();
    nos.sort_unstable();
    assert_eq!(nos, vec![1, 2, 3]);
    let (_, count) = t
        .admin_json(&token, "/products/count?product_no=3,1,2,999")
        .await;
    assert_eq!(count, json!({"count": 3}));
    let (_, all) = t.admin_json(&token, "/products/count").await;
    assert_eq!(all, json!({"count": 50}));
    let too_many: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    let (status, _) = t
        .admin_json(
            &token,
            &format!("/products?product_no={}", too_many.join(",")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn fields_select_keys_and_embed_adds_variants() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (_, body) = t
        .admin_json(
            &token,
            "/products?fields=product_no,product_name&limit=2&embed=variants",
        )
        .await;
    let p = body["products"][0].as_object().expect("object");
    let mut keys: Vec<&str> = p.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["product_name", "product_no", "variants"]);
    let v = &p["variants"][0];
    assert_eq!(v["variant_code"].as_str().expect("code").len(), 12);
}

#[tokio::test]
async fn product_detail_variants_and_404() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (status, body) = t.admin_json(&token, "/products/24").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["product"]["product_code"], "P000000X");
    assert!(body["product"]["description"].is_string());
    let (status, body) = t.admin_json(&token, "/products/24/variants").await;
    assert_eq!(status, StatusCode::OK);
    let first = &body["variants"][0];
    assert_eq!(first["variant_code"], "P000000X000A");
    assert!(first["quantity"].is_i64());
    assert!(first["additional_amount"].is_string());
    let (status, body) = t.admin_json(&token, "/products/9999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    envelope_message(&body, 404);
}

#[tokio::test]
async fn variant_update_changes_inventory_with_fixture_response_shape() {
    let t = spawn().await;
    let token = t.access_token().await;
    let body = json!({"shop_no": 1, "request": {"quantity": 15, "display": "T", "selling": "F",
        "additional_amount": "-1000.00", "safety_inventory": 10, "inventory_control_type": "B"}});
    let resp = t
        .http
        .put(t.mall_url("/api/v2/admin/products/24/variants/P000000X000A"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::OK);
    let updated: Value = resp.json().await.expect("json");
    let v = &updated["variant"];
    assert_eq!(v["selling"], "F");
    assert_eq!(v["additional_amount"], "-1000.00");
    assert!(
        v["inventories"].is_object(),
        "inventories is an object: {v}"
    );
    assert_eq!(v["inventories"]["quantity"], 15);
    assert_eq!(v["inventories"]["inventory_control_type"], "B");
    let (_, list) = t.admin_json(&token, "/products/24/variants").await;
    assert_eq!(list["variants"][0]["quantity"], 15);
    assert_eq!(list["variants"][0]["safety_inventory"], 10);
}

#[tokio::test]
async fn variant_update_with_bad_values_is_422_and_needs_write_scope() {
    let t = spawn().await;
    let token = t.access_token().await;
    let resp = t
        .http
        .put(t.mall_url("/api/v2/admin/products/24/variants/P000000X000A"))
        .bearer_auth(&token)
        .json(&json!({"shop_no": 1, "request": {"quantity": "many"}}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn store_has_the_official_shape() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (status, body) = t.admin_json(&token, "/store").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["store"]["mall_id"], MALL);
    assert_eq!(body["store"]["country_code"], "KOR");
    assert_eq!(body["store"]["shop_no"], 1);
}

#[tokio::test]
async fn webhook_setting_reads_and_switches_reception() {
    let t = spawn().await;
    let token = t.access_token().await;
    let (_, body) = t.admin_json(&token, "/webhooks/setting").await;
    assert_eq!(body["webhook"]["reception_status"], "T");
    assert!(body["webhook"]["scopes"].is_array());
    let resp = t
        .http
        .put(t.mall_url("/api/v2/admin/webhooks/setting"))
        .bearer_auth(&token)
        .json(&json!({"shop_no": 1, "request": {"reception_status": "F"}}))
        .send()
        .await
        .expect("put");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body, json!({"webhook": {"reception_status": "F"}}));
}

#[tokio::test]
async fn seeded_catalog_is_deterministic_and_large() {
    let t = spawn_with(|c| c.malls[0].products = 5000).await;
    let token = t.access_token().await;
    let (_, count) = t.admin_json(&token, "/products/count").await;
    assert_eq!(count, json!({"count": 5000}));
    let (_, a) = t.admin_json(&token, "/products/4321").await;
    let other = spawn_with(|c| c.malls[0].products = 5000).await;
    let token2 = other.access_token().await;
    let (_, b) = other.admin_json(&token2, "/products/4321").await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn unknown_admin_path_is_404_envelope() {
    let t = spawn().await;
    let resp = t
        .http
        .get(t.mall_url("/api/v2/admin/nothing"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.expect("json");
    envelope_message(&body, 404);
}
