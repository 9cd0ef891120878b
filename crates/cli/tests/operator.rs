//! The operator commands as users run them against one database: `exchange --once`, `malls`
//! (table and JSON), `token`, `reencrypt`, `webhooks reconcile`, `revoke`.

use std::process::Command;
use std::sync::Arc;

use cafe24_core::settings::{generate_key_entry, Source};
use cafe24_core::MallId;
use cafe24_testrig::REDIRECT;

const BIN: &str = env!("CARGO_BIN_EXE_cafe24-oauth");
const SCOPES: &str = "mall.read_product,mall.read_application";

fn run(env: &[(String, String)], args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_work_on_a_real_database() {
    let sandbox = cafe24_testrig::start(cafe24_testrig::sandbox_config(REDIRECT)).await;
    let db = cafe24_testkit::fresh_sqlite();
    let path = cafe24_testkit::sqlite_path(&db).expect("path");
    let mut env = cafe24_testrig::runtime_env(&sandbox, REDIRECT, SCOPES);
    env.push(("CAFE24_SQLITE_PATH".into(), path.display().to_string()));
    let store = cafe24_store::connect(&db).await.expect("connect");
    store.migrate().await.expect("migrate");
    let manager = Arc::new(cafe24_testrig::manager(
        &Source::from_pairs(env.clone()),
        store.clone(),
    ));
    let shop1 = MallId::parse("shop1").expect("mall");
    cafe24_testrig::install(&sandbox, &manager, &shop1, REDIRECT, SCOPES).await;

    // exchange --once picks up a stored code.
    let shop2 = MallId::parse("shop2").expect("mall");
    let code = cafe24_testrig::code(&sandbox, &shop2, REDIRECT, SCOPES)
        .await
        .expect("code");
    cafe24_testrig::store_code(store.as_ref(), &shop2, &code)
        .await
        .expect("stored");
    let (status, out) = run(&env, &["exchange", "--once"]);
    assert_eq!(
        (status, out.trim()),
        (Some(0), "exchanged 1, failed 0, expired 0, retried 0")
    );

    let (status, table) = run(&env, &["malls"]);
    assert_eq!(status, Some(0));
    assert!(table.starts_with("MALL"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("shop1") && l.contains("active") && l.contains("in 1h")),
        "{table}"
    );
    let (_, json) = run(&env, &["malls", "--json"]);
    let malls: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(malls.as_array().map(Vec::len), Some(2));
    assert_eq!(malls[0]["mall_id"], "shop1");
    assert_eq!(malls[0]["status"], "active");
    assert_eq!(
        malls[0]["scopes"],
        serde_json::json!(["mall.read_product", "mall.read_application"])
    );

    let (status, token) = run(&env, &["token", "shop1"]);
    assert_eq!(status, Some(0));
    let base = sandbox.base_url_template().replace("{mall_id}", "shop1");
    let api = reqwest::Client::new()
        .get(format!("{base}/api/v2/admin/products/count"))
        .bearer_auth(token.trim())
        .send()
        .await;
    assert_eq!(api.expect("api").status(), 200, "the printed token works");

    // Key rotation: a new first key; every row moves to it and stays readable.
    let old = env
        .iter()
        .find(|(k, _)| k == "TOKEN_ENCRYPTION_KEYS")
        .map(|(_, v)| v.clone())
        .expect("keys");
    for (k, v) in env.iter_mut() {
        if k == "TOKEN_ENCRYPTION_KEYS" {
            *v = format!("{},{old}", generate_key_entry("k2"));
        }
    }
    let (status, out) = run(&env, &["reencrypt"]);
    assert_eq!(
        (status, out.trim()),
        (
            Some(0),
            "re-encrypted 2 mall(s) under key k2; 0 already current or revoked"
        )
    );
    assert_eq!(
        store
            .tokens(&shop1)
            .await
            .expect("read")
            .expect("row")
            .key_id,
        "k2"
    );
    assert_eq!(run(&env, &["token", "shop1"]).0, Some(0));

    let (status, out) = run(&env, &["webhooks", "reconcile", "shop1"]);
    assert_eq!(
        (status, out.trim()),
        (Some(0), "logged 0, confirmed 0, recovered 0, dispatched 0")
    );

    let (status, out) = run(&env, &["revoke", "shop1"]);
    assert_eq!((status, out.trim()), (Some(0), "shop1 revoked"));
    // Both tokens are revoked at Cafe24 (each revokes its pair; neither is left to chance).
    assert_eq!(sandbox.stats("shop1").expect("stats").revokes, 2);
    let (_, json) = run(&env, &["malls", "--json"]);
    assert!(json.contains("\"revoked\""), "{json}");
    assert_eq!(
        run(&env, &["token", "shop1"]).0,
        Some(1),
        "a revoked mall has no token"
    );
    assert_eq!(
        run(&env, &["token", "Not.A.Mall"]).0,
        Some(2),
        "a bad mall id is a usage error"
    );
}
