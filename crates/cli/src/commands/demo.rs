//! `demo`: the whole product in one command, nothing to configure. An in-process sandbox plays
//! Cafe24; the server and the worker run on free loopback ports over an embedded SQLite file;
//! a scripted browser walks install → consent → callback; then the exchange, an Admin API call
//! and a forced refresh. Each step prints what happened and how long it took.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use cafe24_core::settings::{generate_key_entry, LogFormat, Settings, Source, TokenSettings};
use cafe24_core::MallId;
use cafe24_sandbox::{AppConfig, LaunchParams, MallConfig, SandboxConfig};
use cafe24_server::{AppState, Application};
use cafe24_tokens::Worker;
use rand::RngCore;

const MALL: &str = "demo-shop";
const PRODUCTS: u32 = 120;

pub async fn run() -> anyhow::Result<()> {
    cafe24_server::telemetry::init_with_default(LogFormat::Human, "warn");
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("cafe24-oauth-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = walk(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!(
        "\nAll steps passed in {} ms. Next: README.md (configuration, deployment).",
        started.elapsed().as_millis()
    );
    Ok(())
}

async fn walk(dir: &std::path::Path) -> anyhow::Result<()> {
    // Bind our server first: the sandbox must know its redirect URI character for character.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = format!("http://{}", listener.local_addr()?);
    let app = AppConfig {
        name: "cafe24-oauth demo".into(),
        redirect_uris: vec![format!("{server}/oauth/callback")],
        app_url: format!("{server}/install"),
        ..AppConfig::default()
    };
    let sandbox_config = SandboxConfig {
        apps: vec![app.clone()],
        malls: vec![MallConfig {
            mall_id: MALL.into(),
            products: PRODUCTS,
            ..MallConfig::default()
        }],
        ..SandboxConfig::default()
    };
    let sandbox = cafe24_sandbox::start(sandbox_config, "127.0.0.1:0".parse()?).await?;
    println!(
        "Local Cafe24 (sandbox) at {}; server at {server}; database {}",
        sandbox.url(""),
        dir.join("demo.sqlite3").display()
    );

    let source = Source::from_pairs([
        ("CAFE24_CLIENT_ID", app.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET",
            app.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_REDIRECT_URI", format!("{server}/oauth/callback")),
        (
            "CAFE24_SCOPES",
            "mall.read_product,mall.read_store".to_owned(),
        ),
        ("CAFE24_BASE_URL", sandbox.base_url_template()),
        ("EXPECTED_STATE_SECRET", random_hex(32)),
        ("TOKEN_ENCRYPTION_KEYS", generate_key_entry("demo")),
        (
            "CAFE24_SQLITE_PATH",
            dir.join("demo.sqlite3").display().to_string(),
        ),
    ]);
    let settings = Settings::load(&source)?;
    let store = super::context::open_store(&settings.database).await?;
    let manager = super::context::manager(
        store.clone(),
        settings.app.clone(),
        TokenSettings::load(&source)?,
    )?;
    let state = AppState::new(&settings, store.clone());
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let mut worker_stop = stopped.clone();
    let worker = Worker::new(manager.clone()).woken_by(state.code_stored.clone());
    let worker = tokio::spawn(worker.run(async move {
        let _ = worker_stop.changed().await;
    }));
    let server_task = tokio::spawn(
        Application::with_listener(listener, state, &settings.http).run(async move {
            let _ = stopped.changed().await;
        }),
    );

    let outcome = steps(&server, &sandbox, &manager).await;
    let _ = stop.send(true);
    let _ = worker.await;
    let _ = server_task.await;
    store.close().await;
    sandbox.shutdown().await;
    outcome
}

async fn steps(
    server: &str,
    sandbox: &cafe24_sandbox::RunningSandbox,
    manager: &Arc<cafe24_tokens::TokenManager>,
) -> anyhow::Result<()> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mall = MallId::parse(MALL)?;

    let t = Instant::now();
    // The merchant opens the app from Cafe24's admin: a launch URL signed with the client secret.
    let launch = sandbox.launch_url(&LaunchParams {
        mall_id: MALL.into(),
        ..LaunchParams::default()
    })?;
    let install = browser.get(launch).send().await?;
    ensure!(
        install.status() == 302,
        "install answered {}",
        install.status()
    );
    let authorize = location(&install)?;
    step(
        1,
        "install: Cafe24 opened the app (signed launch); /install redirected to Cafe24's consent page with a signed state",
        t,
    );

    let t = Instant::now();
    let consent = browser.get(&authorize).send().await?.text().await?;
    ensure!(
        consent.contains("id=\"approve\""),
        "the consent page has no Approve button"
    );
    step(
        2,
        "consent: the sandbox shows the app, its scopes, Approve and Deny",
        t,
    );

    let t = Instant::now();
    let (action, fields) = approve_form(&consent)?;
    let approved = browser
        .post(sandbox.url(&action))
        .form(&fields)
        .send()
        .await?;
    ensure!(
        approved.status() == 302,
        "approving answered {}",
        approved.status()
    );
    let callback = location(&approved)?;
    ensure!(callback.starts_with(server), "Cafe24 redirected elsewhere");
    step(
        3,
        "approve: the merchant approved; Cafe24 redirects back with a code",
        t,
    );

    let t = Instant::now();
    let saved = browser.get(&callback).send().await?;
    ensure!(
        saved.status() == 200,
        "the callback answered {}",
        saved.status()
    );
    let body: serde_json::Value = saved.json().await?;
    ensure!(
        body["message"] == "Saved",
        "unexpected callback body {body}"
    );
    let callback_done = Instant::now();
    step(4, &format!("callback: code stored, {body}"), t);

    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while manager.store().tokens(&mall).await?.is_none() {
        if Instant::now() > deadline {
            bail!("the code was not exchanged within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    step(5, &format!("exchange: the worker swapped the code for tokens {} ms after the callback (limit: 60 s); stored encrypted", callback_done.elapsed().as_millis()), t);

    let t = Instant::now();
    let first = manager.access_token(&mall).await?;
    let count = product_count(&mall, sandbox, first.expose_secret()).await?;
    step(
        6,
        &format!("Admin API: GET /api/v2/admin/products/count -> {count} products"),
        t,
    );

    let t = Instant::now();
    let second = manager.force_refresh(&mall).await?;
    ensure!(
        second.expose_secret() != first.expose_secret(),
        "the refresh returned the same token"
    );
    let count = product_count(&mall, sandbox, second.expose_secret()).await?;
    let stats = sandbox.stats(MALL).context("sandbox stats")?;
    ensure!(
        stats.refresh_grants == 1 && stats.refresh_tokens_rejected == 0,
        "unexpected refresh counts {stats:?}"
    );
    step(7, &format!("refresh: forced; Cafe24 rotated both tokens (1 refresh grant, 0 rejected); the new token reads {count} products"), t);
    Ok(())
}

fn step(n: u32, what: &str, since: Instant) {
    println!(
        "{n}. {what}  [{:.1} ms]",
        since.elapsed().as_secs_f64() * 1000.0
    );
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get("location")
        .context("no Location header")?
        .to_str()?
        .to_owned())
}

async fn product_count(
    mall: &MallId,
    sandbox: &cafe24_sandbox::RunningSandbox,
    token: &str,
) -> anyhow::Result<u64> {
    let url = format!(
        "{}/api/v2/admin/products/count",
        sandbox
            .base_url_template()
            .replace("{mall_id}", mall.as_str())
    );
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(
        response.status() == 200,
        "the Admin API answered {}",
        response.status()
    );
    let body: serde_json::Value = response.json().await?;
    body["count"].as_u64().context("no count in the answer")
}

/// The consent form's action and fields, with the Approve button's value, as a browser posts them.
fn approve_form(html: &str) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let action = attribute(html.split("<form").nth(1).context("no form")?, "action")
        .context("no form action")?;
    let mut fields: Vec<(String, String)> = html
        .split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect();
    fields.push(("decision".into(), "approve".into()));
    Ok((action, fields))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
