//! The journeys cases build on, done the way a merchant's browser and an app's backend do
//! them: a launch from Cafe24, consent at Cafe24, the callback, a proxied Admin API call.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use url::Url;

use crate::check::{Context, Failure};
use crate::contract::launch;
use crate::db;
use crate::env::SCOPES;
use crate::world::{Answer, World};

/// A mall installed through the whole flow.
#[derive(Debug, Clone)]
pub struct Installed {
    pub code: String,
    pub state: String,
    /// From the callback's answer to the token row appearing.
    pub exchanged_after: Duration,
}

impl World<'_> {
    /// A launch query as Cafe24 sends it for `mall`, signed with the client secret, timestamped now.
    pub fn launch_query(&self, mall: &str) -> String {
        let raw = launch::query(mall, chrono::Utc::now().timestamp());
        launch::sign(&raw, &self.secrets.client_secret)
    }

    /// `GET /install?{query}` on `server`.
    pub async fn install_answer(&self, server: &str, query: &str) -> Result<Answer, Failure> {
        self.get(&format!("{server}/install?{query}")).await
    }

    /// The authorize URL `/install` redirects a valid launch of `mall` to.
    pub async fn install_redirect(&self, server: &str, mall: &str) -> Result<Url, Failure> {
        let answer = self
            .install_answer(server, &self.launch_query(mall))
            .await?;
        crate::ensure!(
            answer.status == 302,
            "GET /install with a valid launch hmac answered {}, expected 302 to Cafe24's authorize",
            answer.summary()
        );
        let location = answer
            .header("location")
            .context("GET /install answered 302 without a Location")?;
        Url::parse(location).context("the Location of /install is not an absolute URL")
    }

    /// Follows an authorize URL at the sandbox (consent is automatic): the code and state
    /// Cafe24 sends the browser back with.
    pub async fn consent(&self, authorize: &Url) -> Result<(String, String), Failure> {
        let answer = self.get(authorize.as_str()).await?;
        crate::ensure!(
            answer.status == 302,
            "Cafe24 (the sandbox) refused the authorize request: {}",
            answer.summary()
        );
        let back = answer
            .header("location")
            .and_then(|l| Url::parse(l).ok())
            .context("Cafe24 answered without a usable Location")?;
        let param = |name: &str| {
            back.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let code = param("code").context("Cafe24 redirected back without a code")?;
        let state = param("state").context("Cafe24 redirected back without a state")?;
        self.remember_code(&code);
        self.remember_state(&state);
        Ok((code, state))
    }

    /// A fresh code for `mall` straight from the sandbox, bound to `state` (not via /install).
    pub async fn sandbox_code(&self, mall: &str, state: &str) -> Result<String, Failure> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.secrets.client_id)
            .append_pair("state", state)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", SCOPES)
            .finish();
        let url = format!(
            "{}/api/v2/oauth/authorize?{query}",
            self.sandbox.mall_base_url(mall)
        );
        let url = Url::parse(&url).context("building the authorize URL")?;
        Ok(self.consent(&url).await?.0)
    }

    /// `GET /oauth/callback` on `server` with `query` as given.
    pub async fn callback_raw(&self, server: &str, query: &str) -> Result<Answer, Failure> {
        self.get(&format!("{server}/oauth/callback?{query}")).await
    }

    pub async fn callback(&self, server: &str, code: &str, state: &str) -> Result<Answer, Failure> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", code)
            .append_pair("state", state)
            .finish();
        self.callback_raw(server, &query).await
    }

    /// Launch → consent → callback on server `i` → tokens stored (within 10 s).
    pub async fn install(&self, mall: &str, i: usize) -> Result<Installed, Failure> {
        let server = self.server(i).to_owned();
        let authorize = self.install_redirect(&server, mall).await?;
        let (code, state) = self.consent(&authorize).await?;
        let answer = self.callback(&server, &code, &state).await?;
        crate::ensure!(
            answer.status == 200,
            "the callback for mall {mall} answered {}, expected 200",
            answer.summary()
        );
        let stored = db::wait_token_row(self.db, mall, Duration::from_secs(10)).await?;
        let (_, exchanged_after) = stored.context(&format!(
            "the code of mall {mall} was not exchanged: no cafe24.tokens row 10 s after the callback"
        ))?;
        Ok(Installed {
            code,
            state,
            exchanged_after,
        })
    }

    /// A call through the proxy: `/internal/malls/{mall}/api/v2/admin{path}` with the admin token.
    pub async fn proxy(
        &self,
        server: &str,
        method: Method,
        mall: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, Failure> {
        let url = format!("{server}/internal/malls/{mall}/api/v2/admin{path}");
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.secrets.admin_token)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.context(&format!("{method} {url}"))?;
        Answer::read(response).await
    }

    /// `GET …/products/count` through the proxy; the count, or why not.
    pub async fn product_count(&self, server: &str, mall: &str) -> Result<u64, Failure> {
        let answer = self
            .proxy(server, Method::GET, mall, "/products/count", None)
            .await?;
        crate::ensure!(
            answer.status == 200,
            "GET /internal/malls/{mall}/api/v2/admin/products/count answered {}",
            answer.summary()
        );
        answer
            .json()
            .and_then(|v| v["count"].as_u64())
            .context(&format!(
                "the proxied answer has no count: {}",
                answer.summary()
            ))
    }

    /// Sleeps until `until`, in small steps (a bounded wait).
    pub async fn sleep_until(&self, until: Instant) {
        tokio::time::sleep_until(until.into()).await;
    }
}

impl World<'_> {
    /// A proxied request, ready to send (for sending many at once).
    pub fn proxy_request(&self, server: &str, mall: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{server}/internal/malls/{mall}/api/v2/admin{path}"))
            .bearer_auth(&self.secrets.admin_token)
            .timeout(Duration::from_secs(30))
    }
}

/// Sends every request at once, each on a task of its own; the answers in the same order.
pub async fn all_at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<Result<Answer, Failure>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, request) in requests.into_iter().enumerate() {
        tasks.spawn(async move {
            let answer = match request.send().await {
                Ok(response) => Answer::read(response).await,
                Err(e) => Err(Failure::from(e)),
            };
            (i, answer)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(answer) => answers.push(answer),
            Err(e) => answers.push((
                usize::MAX,
                Err(Failure::new(format!("a request task failed: {e}"))),
            )),
        }
    }
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, a)| a).collect()
}
