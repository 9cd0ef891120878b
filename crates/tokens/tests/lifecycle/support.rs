//! A sandbox, a fresh database and a token manager wired together.

use std::sync::Arc;

use cafe24_core::secret::AuthorizationCode;
use cafe24_core::settings::{
    generate_key_entry, AppSettings, DatabaseSettings, Source, TokenSettings,
};
use cafe24_core::{Clock, MallId};
use cafe24_sandbox::{AppConfig, RunningSandbox, SandboxConfig};
use cafe24_store::{CodeInsert, NewAuthorizationCode, Store};
use cafe24_testkit::{fresh_database, TestBackend};
use cafe24_tokens::{Exchanger, OAuthClient, TokenManager};
use rand::Rng;
use std::sync::atomic::{AtomicI64, Ordering};

pub const REDIRECT: &str = "https://app.example.com/oauth/callback";

/// The wall clock plus an offset the test moves (together with the sandbox's clock).
#[derive(Default)]
pub struct TestClock {
    offset_secs: AtomicI64,
}

impl Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
}

pub struct Rig {
    pub clock: Arc<TestClock>,
    pub sandbox: RunningSandbox,
    pub db: DatabaseSettings,
    pub store: Arc<dyn Store>,
    pub manager: Arc<TokenManager>,
    pub keys: String,
    http: reqwest::Client,
}

pub fn mall(m: &str) -> MallId {
    MallId::parse(m).expect("mall id")
}

/// `tune` adjusts the sandbox; `extra` adds settings (e.g. `CAFE24_REFRESH_MARGIN_SECS`).
pub async fn rig(
    backend: TestBackend,
    tune: impl FnOnce(&mut SandboxConfig),
    extra: &[(&'static str, &str)],
) -> Rig {
    let mut config = SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
        apps: vec![AppConfig {
            redirect_uris: vec![REDIRECT.into()],
            ..AppConfig::default()
        }],
        ..SandboxConfig::default()
    };
    tune(&mut config);
    let sandbox = cafe24_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let db = fresh_database(backend).await;
    let store = cafe24_store::connect(&db).await.expect("connect");
    store.migrate().await.expect("migrate");
    let keys = generate_key_entry("k1");
    let clock = Arc::new(TestClock::default());
    let manager = manager_for(&sandbox, store.clone(), &keys, extra, clock.clone());
    Rig {
        clock,
        sandbox,
        db,
        store,
        manager,
        keys,
        http: no_redirects(),
    }
}

pub fn manager_for(
    sandbox: &RunningSandbox,
    store: Arc<dyn Store>,
    keys: &str,
    extra: &[(&'static str, &str)],
    clock: Arc<dyn Clock>,
) -> Arc<TokenManager> {
    let app = AppConfig::default();
    let mut pairs: Vec<(&str, String)> = vec![
        ("CAFE24_CLIENT_ID", app.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET",
            app.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_REDIRECT_URI", REDIRECT.into()),
        ("CAFE24_SCOPES", "mall.read_product,mall.read_store".into()),
        ("CAFE24_BASE_URL", sandbox.base_url_template()),
        ("TOKEN_ENCRYPTION_KEYS", keys.to_owned()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let source = Source::from_pairs(pairs);
    let app = AppSettings::load(&source).expect("app settings");
    let tokens = TokenSettings::load(&source).expect("token settings");
    let oauth = OAuthClient::new(Arc::new(app), tokens.http_timeout).expect("client");
    Arc::new(TokenManager::new(store, oauth, tokens, clock))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl Rig {
    /// Moves time forward for both the token manager and the sandbox.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock
            .offset_secs
            .fetch_add(by.num_seconds(), Ordering::SeqCst);
        self.sandbox.advance_clock(by);
    }

    /// A fresh authorization code for `mall`, from the sandbox's (auto-approved) consent.
    pub async fn code(&self, mall: &MallId) -> String {
        let base = self
            .sandbox
            .base_url_template()
            .replace("{mall_id}", mall.as_str());
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &AppConfig::default().client_id)
            .append_pair("state", "test-state")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "mall.read_product,mall.read_store")
            .finish();
        let response = self
            .http
            .get(format!("{base}/api/v2/oauth/authorize?{query}"))
            .send()
            .await
            .expect("authorize");
        assert_eq!(
            response.status(),
            302,
            "authorize: {:?}",
            response.text().await
        );
        let location =
            url::Url::parse(response.headers()["location"].to_str().expect("ascii")).expect("url");
        location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code")
    }

    /// Stores a code as the callback does; returns its row id.
    pub async fn stored_code(&self, mall: &MallId, code: &str) -> i64 {
        let state = format!("state-{:x}", rand::thread_rng().gen::<u64>());
        let code = AuthorizationCode::new(code);
        match self
            .store
            .insert_authorization_code(NewAuthorizationCode {
                code: &code,
                state: &state,
                mall_id: mall,
                max_pending: u32::MAX,
            })
            .await
        {
            Ok(CodeInsert::Stored { id }) => id,
            other => panic!("not stored: {other:?}"),
        }
    }

    /// Installs `mall` through the exchange queue.
    pub async fn install(&self, mall: &MallId) {
        let code = self.code(mall).await;
        self.stored_code(mall, &code).await;
        let summary = Exchanger::new(self.manager.clone())
            .drain()
            .await
            .expect("exchange");
        assert_eq!(summary.exchanged, 1, "{summary:?}");
    }

    /// The status of an Admin API call made with `token`.
    pub async fn api_status(&self, mall: &MallId, token: &str) -> u16 {
        let base = self
            .sandbox
            .base_url_template()
            .replace("{mall_id}", mall.as_str());
        self.http
            .get(format!("{base}/api/v2/admin/products/count"))
            .bearer_auth(token)
            .send()
            .await
            .expect("api")
            .status()
            .as_u16()
    }

    /// The kinds of the mall events recorded so far, oldest first.
    pub async fn event_kinds(&self) -> Vec<String> {
        self.store
            .events(0, 100)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub fn stats(&self, mall: &MallId) -> cafe24_sandbox::StatsSnapshot {
        self.sandbox.stats(mall.as_str()).unwrap_or_default()
    }
}
