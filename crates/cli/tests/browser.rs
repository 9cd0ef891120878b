//! The install flow as a merchant clicks it, in real headless Chromium: opened from Cafe24 (a
//! signed launch URL), our `/install` sends the browser to the sandbox's consent page, a button there decides, and the sandbox sends the
//! browser back to our `/oauth/callback`, whose page says how it went.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `scripts/test` installs them. Fails, never
//! skips, without them.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use cafe24_core::settings::{DatabaseSettings, Settings, Source};
use cafe24_sandbox::{AppConfig, LaunchParams, RunningSandbox, SandboxConfig, Secret};
use cafe24_server::Application;
use cafe24_store::{CodeStatus, Store};
use support::webdriver::{free_port, Chromedriver, Session};
use tokio::sync::oneshot;

const MALL: &str = "sandboxmall";
const CLIENT_ID: &str = "browser-test-client";
const CLIENT_SECRET: &str = "browser-test-client-secret-5e2a";
const STATE_SECRET: &str = "browser-test-state-secret-0123456789abcdef";
const APP_NAME: &str = "Browser Test App";

/// The sandbox and our server, wired to each other on loopback, with a fresh SQLite store.
struct Stack {
    sandbox: RunningSandbox,
    server: SocketAddr,
    store: Arc<dyn Store>,
    _stop: oneshot::Sender<()>,
}

impl Stack {
    async fn start() -> Self {
        let config = SandboxConfig {
            auto_approve: false,
            ..SandboxConfig::default()
        };
        let sandbox = cafe24_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sandbox starts");
        let db = cafe24_testkit::fresh_sqlite();
        let store = cafe24_store::connect(&db).await.expect("connect");
        store.migrate().await.expect("migrate");
        let (app, callback) = bind_server(&sandbox, &db, &store).await;
        let server = app.local_addr().expect("addr");

        // The sandbox compares redirect URIs character for character, and ours names the port
        // we only now know, so the app is registered at run time.
        sandbox
            .add_app(AppConfig {
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(CLIENT_SECRET),
                name: APP_NAME.into(),
                redirect_uris: vec![callback],
                app_url: format!("http://{server}/install"),
                ..AppConfig::default()
            })
            .expect("register the app");

        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Self {
            sandbox,
            server,
            store,
            _stop: stop,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.server)
    }
}

/// Binds our server on a free port whose callback URL is its own redirect URI. The port is
/// picked before binding (the settings must name it), so a lost race is retried.
async fn bind_server(
    sandbox: &RunningSandbox,
    db: &DatabaseSettings,
    store: &Arc<dyn Store>,
) -> (Application, String) {
    let mut last_error = None;
    for _ in 0..5 {
        let port = free_port().expect("free port");
        let callback = format!("http://127.0.0.1:{port}/oauth/callback");
        let pairs = [
            ("CAFE24_CLIENT_ID", CLIENT_ID.to_owned()),
            ("CAFE24_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("CAFE24_REDIRECT_URI", callback.clone()),
            (
                "CAFE24_SCOPES",
                "mall.read_product,mall.read_store".to_owned(),
            ),
            ("CAFE24_BASE_URL", sandbox.base_url_template()),
            ("EXPECTED_STATE_SECRET", STATE_SECRET.to_owned()),
            ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
        ];
        let mut settings = Settings::load(&Source::from_pairs(pairs)).expect("settings load");
        settings.database = db.clone();
        match Application::build(&settings, store.clone()).await {
            Ok(app) => return (app, callback),
            Err(e) => last_error = Some(e),
        }
    }
    panic!("cannot bind our server: {last_error:?}");
}

/// What the browser saw on its way through.
#[derive(Debug)]
struct Visit {
    consent_url: String,
    consent_app: String,
    consent_mall: String,
    final_url: String,
    status: u64,
    data_ok: Option<String>,
    title: String,
    message: String,
    screenshot: Vec<u8>,
}

/// Opens the app from Cafe24 (the sandbox's signed launch URL of our `/install`), clicks
/// `button` on the consent page, and reads our result page.
async fn click_through(browser: &Session, stack: &Stack, button: &str) -> anyhow::Result<Visit> {
    let launch = stack.sandbox.launch_url(&LaunchParams {
        mall_id: MALL.into(),
        client_id: Some(CLIENT_ID.into()),
        ..LaunchParams::default()
    })?;
    anyhow::ensure!(
        launch.starts_with(&stack.url("/install?")),
        "the launch URL {launch} is not our /install"
    );
    browser.goto(&launch).await?;
    let consent_url = browser.current_url().await?;
    let consent_app = browser.text(&browser.wait_for("#app-name").await?).await?;
    let consent_mall = browser.text(&browser.wait_for("#mall-id").await?).await?;

    browser.click(&browser.wait_for(button).await?).await?;
    let result = browser.wait_for("#result").await?;
    Ok(Visit {
        consent_url,
        consent_app,
        consent_mall,
        final_url: browser.current_url().await?,
        status: browser.response_status().await?,
        data_ok: browser.attribute(&result, "data-ok").await?,
        title: browser.text(&result).await?,
        message: browser.text(&browser.wait_for("#message").await?).await?,
        screenshot: browser.screenshot().await?,
    })
}

/// Runs [`click_through`] in a fresh Chromium, always closing it before the test asserts.
async fn visit(stack: &Stack, button: &str, screenshot_name: &str) -> Visit {
    let driver = Chromedriver::start().await.expect("chromedriver starts");
    let browser = driver.new_session().await.expect("Chromium starts");
    let visit = click_through(&browser, stack, button).await;
    browser.quit().await;
    let visit = visit.expect("the browser clicks through");
    let path = std::env::temp_dir().join(screenshot_name);
    std::fs::write(&path, &visit.screenshot).expect("save the screenshot");
    eprintln!("screenshot of the final page: {}", path.display());
    visit
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let value = url.query_pairs().find(|(k, _)| k == name)?.1;
    Some(value.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_on_the_consent_page_installs_the_app() {
    let stack = Stack::start().await;

    let visit = visit(&stack, "#approve", "cafe24-browser-approved.png").await;

    let authorize = stack
        .sandbox
        .url(&format!("/malls/{MALL}/api/v2/oauth/authorize?"));
    assert!(visit.consent_url.starts_with(&authorize), "{visit:?}");
    assert_eq!(visit.consent_app, APP_NAME);
    assert_eq!(visit.consent_mall, MALL);
    assert!(
        visit.final_url.starts_with(&stack.url("/oauth/callback?")),
        "{visit:?}"
    );
    assert_eq!(visit.status, 200);
    assert_eq!(visit.data_ok.as_deref(), Some("true"));
    assert_eq!(visit.title, "App installed");
    assert!(visit.message.contains(MALL), "{}", visit.message);
    assert!(visit.screenshot.starts_with(b"\x89PNG"));

    let row = stack
        .store
        .authorization_code(1)
        .await
        .expect("read the store")
        .expect("the code was stored as row 1");
    assert_eq!(row.mall_id.as_ref().map(|m| m.as_str()), Some(MALL));
    assert_eq!(row.status, CodeStatus::Pending);
    let code = row.code.as_ref().map(|c| c.expose_secret().to_owned());
    assert_eq!(code, query_param(&visit.final_url, "code"));
    assert_eq!(
        Some(row.state.clone()),
        query_param(&visit.final_url, "state")
    );
    let stats = stack.sandbox.stats(MALL).expect("mall stats");
    assert_eq!(stats.codes_issued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denying_on_the_consent_page_stores_nothing() {
    let stack = Stack::start().await;

    let visit = visit(&stack, "#deny", "cafe24-browser-denied.png").await;

    assert!(
        visit.final_url.starts_with(&stack.url("/oauth/callback?")),
        "{visit:?}"
    );
    assert_eq!(
        query_param(&visit.final_url, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(visit.status, 403);
    assert_eq!(visit.data_ok.as_deref(), Some("false"));
    assert!(visit.message.contains("access_denied"), "{}", visit.message);

    let row = stack
        .store
        .authorization_code(1)
        .await
        .expect("read the store");
    assert!(row.is_none(), "a denied install stored {row:?}");
    let stats = stack.sandbox.stats(MALL).expect("mall stats");
    assert_eq!(stats.codes_issued, 0);
}
