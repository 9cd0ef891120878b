//! A sandbox, a fresh SQLite database, a token manager with installed malls, and a client —
//! on a virtual clock shared with the (frozen) sandbox, or on the wall clock.

use std::sync::Arc;
use std::time::Duration;

use cafe24_client::{Client, MallClient, Timer, VirtualTimer};
use cafe24_core::secret::AuthorizationCode;
use cafe24_core::settings::{
    generate_key_entry, AppSettings, ClientSettings, DatabaseSettings, Source, TokenSettings,
};
use cafe24_core::{MallId, SystemClock};
use cafe24_sandbox::{AppConfig, MallConfig, RunningSandbox, SandboxConfig, StatsSnapshot};
use cafe24_store::{NewAuthorizationCode, Store};
use cafe24_testkit::fresh_sqlite;
use cafe24_tokens::{Exchanger, OAuthClient, TokenManager};

pub const REDIRECT: &str = "https://app.example.com/oauth/callback";
pub const SCOPES: &str = "mall.read_product,mall.write_product,mall.read_store";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// Client and sandbox share a virtual clock that moves only when the client waits.
    Virtual,
    /// The wall clock on both sides.
    Real,
}

pub struct Rig {
    pub db: DatabaseSettings,
    pub sandbox: RunningSandbox,
    pub store: Arc<dyn Store>,
    pub manager: Arc<TokenManager>,
    /// The settings the rig was built from (for a server in front of it).
    pub source: Vec<(&'static str, String)>,
    pub client: Client,
    pub timer: Option<Arc<VirtualTimer>>,
    http: reqwest::Client,
}

pub fn mall(m: &str) -> MallId {
    MallId::parse(m).expect("mall id")
}

/// `malls`: (id, seeded products), each installed. `extra`: client settings to override.
pub async fn rig(malls: &[(&str, u32)], time: Time, extra: &[(&'static str, &str)]) -> Rig {
    rig_on(fresh_sqlite(), SandboxConfig::default(), malls, time, extra).await
}

/// As [`rig`], on the database of `db`, with `sandbox` as the base of the sandbox's settings.
pub async fn rig_on(
    db: DatabaseSettings,
    sandbox: SandboxConfig,
    malls: &[(&str, u32)],
    time: Time,
    extra: &[(&'static str, &str)],
) -> Rig {
    let config = SandboxConfig {
        auto_approve: true,
        apps: vec![AppConfig {
            redirect_uris: vec![REDIRECT.into()],
            ..AppConfig::default()
        }],
        malls: malls
            .iter()
            .map(|(id, products)| MallConfig {
                mall_id: (*id).into(),
                products: *products,
                ..MallConfig::default()
            })
            .collect(),
        ..sandbox
    };
    let sandbox = cafe24_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let store = cafe24_store::connect(&db).await.expect("connect");
    store.migrate().await.expect("migrate");
    let defaults = AppConfig::default();
    let mut pairs: Vec<(&'static str, String)> = vec![
        ("CAFE24_CLIENT_ID", defaults.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET",
            defaults.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_REDIRECT_URI", REDIRECT.into()),
        ("CAFE24_SCOPES", SCOPES.into()),
        ("CAFE24_BASE_URL", sandbox.base_url_template()),
        ("CAFE24_API_VERSION", "2025-12-01".into()),
        ("TOKEN_ENCRYPTION_KEYS", generate_key_entry("k1")),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let source = Source::from_pairs(pairs.clone());
    let app = AppSettings::load(&source).expect("app settings");
    let tokens = TokenSettings::load(&source).expect("token settings");
    let settings = ClientSettings::load(&source).expect("client settings");
    let oauth = OAuthClient::new(Arc::new(app.clone()), tokens.http_timeout).expect("oauth");
    let manager = Arc::new(TokenManager::new(
        store.clone(),
        oauth,
        tokens,
        Arc::new(SystemClock),
    ));
    let (client, timer) = match time {
        Time::Real => (
            Client::new(manager.clone(), &app, settings).expect("client"),
            None,
        ),
        Time::Virtual => {
            sandbox.freeze_clock();
            let state = sandbox.state().clone();
            let timer = Arc::new(VirtualTimer::new(move |by| {
                state
                    .clock
                    .advance(chrono::Duration::from_std(by).expect("duration"));
            }));
            let client =
                Client::with_timer(manager.clone(), &app, settings, timer.clone()).expect("client");
            (client, Some(timer))
        }
    };
    let rig = Rig {
        db,
        sandbox,
        store,
        manager,
        source: pairs,
        client,
        timer,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http"),
    };
    for (id, _) in malls {
        rig.install(&mall(id)).await;
    }
    rig.sandbox.reset_stats();
    rig
}

impl Rig {
    pub fn mall(&self, m: &str) -> MallClient {
        self.client.mall(mall(m))
    }

    /// A client with the rig's tokens that calls `base_url` instead of the sandbox, on a
    /// virtual clock of its own; `extra` overrides client settings.
    pub fn client_for(
        &self,
        base_url: &str,
        extra: &[(&'static str, &str)],
    ) -> (Client, Arc<VirtualTimer>) {
        let mut pairs = self.source.clone();
        pairs.retain(|(k, _)| *k != "CAFE24_BASE_URL");
        pairs.push(("CAFE24_BASE_URL", base_url.to_owned()));
        pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let source = Source::from_pairs(pairs);
        let app = AppSettings::load(&source).expect("app settings");
        let settings = ClientSettings::load(&source).expect("client settings");
        let timer = Arc::new(VirtualTimer::new(|_| {}));
        let client = Client::with_timer(self.manager.clone(), &app, settings, timer.clone())
            .expect("client");
        (client, timer)
    }

    /// Another process of the same app: its own store connections, token manager and client
    /// (wall clock), on the rig's database.
    pub async fn another_process(&self) -> Client {
        let source = Source::from_pairs(self.source.clone());
        let app = AppSettings::load(&source).expect("app settings");
        let tokens = TokenSettings::load(&source).expect("token settings");
        let store = cafe24_store::connect(&self.db).await.expect("connect");
        let oauth = OAuthClient::new(Arc::new(app.clone()), tokens.http_timeout).expect("oauth");
        let manager = Arc::new(TokenManager::new(
            store,
            oauth,
            tokens,
            Arc::new(SystemClock),
        ));
        Client::new(
            manager,
            &app,
            ClientSettings::load(&source).expect("client settings"),
        )
        .expect("client")
    }

    pub fn stats(&self, m: &str) -> StatsSnapshot {
        self.sandbox.stats(m).expect("mall exists")
    }

    /// Virtual time elapsed (only meaningful with `Time::Virtual`).
    pub fn virtual_now(&self) -> Duration {
        self.timer.as_ref().map_or(Duration::ZERO, |t| t.now())
    }

    /// Installs `mall` the way the callback and the exchange queue do.
    async fn install(&self, mall: &MallId) {
        let base = self.sandbox.mall_base_url(mall.as_str());
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &AppConfig::default().client_id)
            .append_pair("state", "test-state")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", SCOPES)
            .finish();
        let response = self
            .http
            .get(format!("{base}/api/v2/oauth/authorize?{query}"))
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), 302);
        let location =
            url::Url::parse(response.headers()["location"].to_str().expect("ascii")).expect("url");
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code");
        let code = AuthorizationCode::new(code);
        let state = format!("state-{}", mall.as_str());
        self.store
            .insert_authorization_code(NewAuthorizationCode {
                code: &code,
                state: &state,
                mall_id: mall,
                max_pending: u32::MAX,
            })
            .await
            .expect("stored");
        let summary = Exchanger::new(self.manager.clone())
            .drain()
            .await
            .expect("exchange");
        assert_eq!(summary.exchanged, 1, "{summary:?}");
    }

    /// `n` Admin calls made outside the client (another process sharing the mall's bucket).
    pub async fn outside_calls(&self, m: &str, n: usize) {
        let token = self.manager.access_token(&mall(m)).await.expect("token");
        let url = format!(
            "{}/api/v2/admin/products/count",
            self.sandbox.mall_base_url(m)
        );
        for _ in 0..n {
            let status = self
                .http
                .get(&url)
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .expect("call")
                .status();
            assert_eq!(status, 200);
        }
    }
}
