//! `spawn_app`: a server on a free port with a fresh database, and a client that checks every
//! response it sees against the OpenAPI document.

use std::net::SocketAddr;
use std::sync::Arc;

use cafe24_core::settings::{DatabaseSettings, Settings, Source};
use cafe24_core::{MallId, StateSigner};
use cafe24_server::{Application, OPENAPI};
use cafe24_store::Store;
use cafe24_testkit::{fresh_database, TestBackend};
use tokio::sync::oneshot;

pub const CLIENT_SECRET: &str = "test-client-secret-value";
pub const STATE_SECRET: &str = "test-state-secret-0123456789abcdef";

pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    pub client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

pub fn base_pairs() -> Vec<(&'static str, String)> {
    [
        ("CAFE24_CLIENT_ID", "test-client"),
        ("CAFE24_CLIENT_SECRET", CLIENT_SECRET),
        (
            "CAFE24_REDIRECT_URI",
            "https://app.example.com/oauth/callback",
        ),
        ("CAFE24_SCOPES", "mall.read_product,mall.read_store"),
        ("EXPECTED_STATE_SECRET", STATE_SECRET),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        // Tests open /install directly, as a developer does locally; the tests of the launch
        // hmac turn the requirement (the default) back on.
        ("CAFE24_LAUNCH_HMAC_REQUIRED", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

pub async fn spawn_app(backend: TestBackend) -> TestApp {
    spawn_with(fresh_database(backend).await, &[], true).await
}

/// A server with extra settings on top of the defaults; `migrate` false leaves the database as is.
pub async fn spawn_with(
    db: DatabaseSettings,
    extra: &[(&'static str, &str)],
    migrate: bool,
) -> TestApp {
    let mut pairs = base_pairs();
    pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut settings = Settings::load(&Source::from_pairs(pairs)).expect("test settings load");
    settings.database = db;
    let store = cafe24_store::connect(&settings.database)
        .await
        .expect("connect");
    if migrate {
        store.migrate().await.expect("migrate");
    }
    let app = Application::build(&settings, store.clone())
        .await
        .expect("bind");
    let addr = app.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        addr,
        store,
        settings,
        client,
        _stop: stop,
    }
}

impl TestApp {
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    pub fn signer(&self) -> StateSigner {
        StateSigner::new(self.settings.state.key.clone(), self.settings.state.ttl)
    }

    pub fn fresh_state(&self, mall: &str) -> String {
        let mall = MallId::parse(mall).expect("mall");
        self.signer()
            .issue(&mall, chrono::Utc::now())
            .as_str()
            .to_owned()
    }

    /// GET with curl's default `Accept: */*`; the status must be documented in the OpenAPI file.
    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.get_accepting(path_and_query, "*/*").await
    }

    pub async fn get_accepting(&self, path_and_query: &str, accept: &str) -> reqwest::Response {
        let response = self
            .client
            .get(self.url(path_and_query))
            .header("accept", accept)
            .send()
            .await
            .expect("request");
        let path = path_and_query.split('?').next().unwrap_or_default();
        assert_documented(path, "get", response.status().as_u16());
        response
    }

    pub async fn callback(&self, code: &str, state: &str) -> reqwest::Response {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", code)
            .append_pair("state", state)
            .finish();
        self.get(&format!("/oauth/callback?{query}")).await
    }
}

pub fn openapi() -> serde_json::Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

/// Fails unless the OpenAPI document lists `status` for `method path`.
pub fn assert_documented(path: &str, method: &str, status: u16) {
    let doc = openapi();
    let Some(op) = doc["paths"].get(path).and_then(|p| p.get(method)) else {
        // Unknown routes answer 404 and are, by design, not in the document.
        assert!(
            matches!(status, 404 | 405 | 414),
            "{method} {path} is undocumented yet answered {status}"
        );
        return;
    };
    assert!(
        op["responses"].get(status.to_string()).is_some(),
        "{method} {path} answered {status}, which openapi.json does not list"
    );
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("JSON body")
}
