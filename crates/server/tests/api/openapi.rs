//! `openapi.json` stays true: it is valid OpenAPI 3, it lists exactly the routes the server
//! serves, and every status any test observes is documented (see `helpers::assert_documented`).

use cafe24_testkit::fresh_sqlite;

use crate::helpers::{json, openapi, spawn_with};

/// The routes `cafe24_server::router` registers.
const SERVED: &[&str] = &[
    "/healthz",
    "/install",
    "/metrics",
    "/oauth/callback",
    "/openapi.json",
    "/readyz",
    "/webhooks/cafe24",
];

/// Routes served only when configured (the Admin API proxy needs `CAFE24_ADMIN_TOKEN`); the
/// client crate's proxy tests serve and call it.
const CONFIGURED: &[&str] = &["/internal/malls/{mall_id}/api/v2/{path}"];

#[test]
fn the_document_is_openapi_3_with_exactly_the_served_routes() {
    let doc = openapi();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    let mut expected: Vec<&str> = SERVED.iter().chain(CONFIGURED).copied().collect();
    expected.sort_unstable();
    assert_eq!(paths, expected);
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operation") {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_route_is_served_and_the_document_is_served_verbatim() {
    let app = spawn_with(fresh_sqlite(), &[], true).await;
    for path in SERVED {
        let status = app.get(path).await.status().as_u16();
        assert_ne!(status, 404, "{path} is documented but not served");
    }
    let served = json(app.get("/openapi.json").await).await;
    assert_eq!(served, openapi());
}
