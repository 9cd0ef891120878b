//! `cafe24-oauth api` as an operator runs it: one call, every page with `--all`, bad input.

use std::process::Command;
use std::sync::Arc;

use cafe24_core::settings::Source;
use cafe24_core::MallId;
use cafe24_sandbox::{MallConfig, SandboxConfig};
use cafe24_testrig::REDIRECT;

const BIN: &str = env!("CARGO_BIN_EXE_cafe24-oauth");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_prints_one_answer_or_every_page_as_json() {
    let config = SandboxConfig {
        malls: vec![MallConfig {
            mall_id: "shop1".into(),
            products: 230,
            ..MallConfig::default()
        }],
        ..cafe24_testrig::sandbox_config(REDIRECT)
    };
    let sandbox = cafe24_testrig::start(config).await;
    let db = cafe24_testkit::fresh_sqlite();
    let path = cafe24_testkit::sqlite_path(&db).expect("sqlite path");
    let mut env = cafe24_testrig::runtime_env(&sandbox, REDIRECT, "mall.read_product");
    env.push(("CAFE24_SQLITE_PATH".into(), path.display().to_string()));
    let store = cafe24_store::connect(&db).await.expect("connect");
    store.migrate().await.expect("migrate");
    let manager = Arc::new(cafe24_testrig::manager(
        &Source::from_pairs(env.clone()),
        store,
    ));
    let mall = MallId::parse("shop1").expect("mall");
    cafe24_testrig::install(&sandbox, &manager, &mall, REDIRECT, "mall.read_product").await;

    let api = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("api")
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
    };

    let (code, stdout) = api(&["shop1", "GET", "/products/count"]);
    assert_eq!(code, Some(0), "{stdout}");
    let count: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(count["count"], 230);

    let (code, stdout) = api(&["shop1", "GET", "/products", "--all"]);
    assert_eq!(code, Some(0));
    let all: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON array");
    let numbers: Vec<i64> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["product_no"].as_i64().expect("product_no"))
        .collect();
    assert_eq!(numbers.len(), 230, "every product once");
    let unique: std::collections::BTreeSet<_> = numbers.iter().collect();
    assert_eq!(unique.len(), 230, "no duplicates");

    assert_eq!(
        api(&["shop1", "FETCH", "/products"]).0,
        Some(2),
        "a bad method is a usage error"
    );
    assert_eq!(
        api(&[
            "shop1",
            "PUT",
            "/products/1/variants/X",
            "--data",
            "{not json"
        ])
        .0,
        Some(2)
    );
    assert_eq!(api(&["Bad.Mall", "GET", "/products"]).0, Some(2));
    assert_eq!(
        api(&["unknown", "GET", "/products/count"]).0,
        Some(1),
        "a mall that is not installed fails at run time"
    );
}
