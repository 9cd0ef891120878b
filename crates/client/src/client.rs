//! The client: one per process, shared by every task; [`Client::mall`] binds it to a mall.
//! A call takes the mall's token, waits for room in its bucket, sends, and retries as the
//! answer allows: a 401 once after a forced refresh, a 429 after the pause Cafe24 asks for,
//! 500/503/504 and lost answers with exponential backoff and jitter — the latter only for
//! idempotent requests — within a bounded number of attempts and an overall deadline.

use std::sync::Arc;
use std::time::Duration;

use cafe24_core::secret::AccessToken;
use cafe24_core::settings::{AppSettings, ClientSettings};
use cafe24_core::{BaseUrlTemplate, MallId};
use cafe24_tokens::TokenManager;
use rand::Rng;
use serde_json::Value;

use crate::metrics::ClientMetrics;
use crate::pacer::{BucketSpec, LimitReport, MallPacer, Pacers};
use crate::request::Request;
use crate::timer::{SystemTimer, Timer};
use crate::ApiError;

/// A successful answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    /// The JSON body (`null` for an empty body).
    pub body: Value,
    /// Attempts it took, the successful one included.
    pub attempts: u32,
    /// What the answer said about the bucket.
    pub limit: LimitReport,
}

struct Inner {
    http: reqwest::Client,
    tokens: Arc<TokenManager>,
    base_url: BaseUrlTemplate,
    api_version: Option<String>,
    settings: ClientSettings,
    pacers: Pacers,
    metrics: ClientMetrics,
}

/// Cheap to clone; clones share tokens, pacing and metrics.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("api_version", &self.inner.api_version)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(
        tokens: Arc<TokenManager>,
        app: &AppSettings,
        settings: ClientSettings,
    ) -> Result<Self, ApiError> {
        Self::with_timer(tokens, app, settings, Arc::new(SystemTimer::default()))
    }

    /// As [`Client::new`], with the timer pacing and backoff use (tests pass a virtual one).
    pub fn with_timer(
        tokens: Arc<TokenManager>,
        app: &AppSettings,
        settings: ClientSettings,
        timer: Arc<dyn Timer>,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cafe24-oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::InvalidRequest(format!("building the HTTP client: {e}")))?;
        let spec = BucketSpec {
            size: f64::from(settings.bucket_size),
            drain_per_sec: settings.drain_per_sec,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                tokens,
                base_url: app.base_url.clone(),
                api_version: app.api_version.clone(),
                settings,
                pacers: Pacers::new(spec, timer),
                metrics: ClientMetrics::default(),
            }),
        })
    }

    /// The client bound to one mall.
    pub fn mall(&self, mall: MallId) -> MallClient {
        MallClient {
            pacer: self.inner.pacers.mall(&mall),
            client: self.clone(),
            mall,
            shop_no: 1,
        }
    }

    pub fn metrics(&self) -> &ClientMetrics {
        &self.inner.metrics
    }

    pub fn pacers(&self) -> &Pacers {
        &self.inner.pacers
    }

    pub fn tokens(&self) -> &Arc<TokenManager> {
        &self.inner.tokens
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.inner.settings
    }
}

/// The client for one mall (and one shop of it, 1 unless [`MallClient::shop`] says otherwise).
#[derive(Clone, Debug)]
pub struct MallClient {
    pub(crate) client: Client,
    pub(crate) mall: MallId,
    pub(crate) pacer: Arc<MallPacer>,
    pub(crate) shop_no: u32,
}

/// How one attempt ended.
enum Attempt {
    Answered {
        status: u16,
        body: Vec<u8>,
        limit: LimitReport,
    },
    Lost(String),
}

impl MallClient {
    pub fn mall_id(&self) -> &MallId {
        &self.mall
    }

    pub fn pacer(&self) -> &Arc<MallPacer> {
        &self.pacer
    }

    /// The shop number typed helpers send (`shop_no`); default 1.
    pub fn shop(mut self, shop_no: u32) -> Self {
        self.shop_no = shop_no;
        self
    }

    /// Sends `req` with pacing and retries; a non-success answer becomes [`ApiError::Cafe24`].
    #[tracing::instrument(name = "cafe24_api", skip_all, fields(mall_id = %self.mall, method = %req.method, path = %req.path))]
    pub async fn send(&self, req: &Request) -> Result<ApiResponse, ApiError> {
        let inner = &self.client.inner;
        let timer = inner.pacers.timer();
        let deadline = timer.now() + inner.settings.deadline;
        let mut token = inner.tokens.access_token(&self.mall).await?;
        let mut refreshed = false;
        let mut attempts = 0u32;
        let mut failures = 0u32;
        // 429s are Cafe24 saying "later", not a fault: they are bounded by the deadline (and
        // paced by the mall-wide pause), not by the attempt budget.
        let mut rate_limited = 0u32;
        loop {
            if self.pacer.acquire(Some(deadline)).await.is_err() {
                inner.metrics.give_up("deadline");
                return Err(ApiError::Deadline {
                    attempts,
                    last: Some("waiting for room in the mall's bucket".into()),
                });
            }
            attempts += 1;
            let (reason, last) = match self.attempt(req, &token).await {
                Attempt::Answered {
                    status,
                    body,
                    limit,
                } => {
                    inner.metrics.attempt(&status.to_string());
                    self.pacer.observe(&limit);
                    if (200..300).contains(&status) {
                        let body = if body.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_slice(&body)
                                .map_err(|e| ApiError::Malformed(e.to_string()))?
                        };
                        return Ok(ApiResponse {
                            status,
                            body,
                            attempts,
                            limit,
                        });
                    }
                    let err = ApiError::from_response(status, &body, attempts);
                    match status {
                        401 if !refreshed => {
                            // Refused before processing: refresh once (or pick up another
                            // task's refresh) and try again, whatever the method.
                            refreshed = true;
                            inner.metrics.retry("unauthorized");
                            tracing::info!(
                                attempt = attempts,
                                "401 from Cafe24: refreshing the token and retrying once"
                            );
                            token = inner.tokens.refresh_rejected(&self.mall, &token).await?;
                            continue;
                        }
                        429 => {
                            // Refused before processing: always safe to send again.
                            failures += 1;
                            rate_limited += 1;
                            let wait = limit
                                .remain_secs
                                .map(Duration::from_secs)
                                .unwrap_or_else(|| self.backoff(failures));
                            self.pacer.limited(wait);
                            ("rate_limited", err)
                        }
                        500 | 503 | 504 if req.is_idempotent() => {
                            failures += 1;
                            ("server_error", err)
                        }
                        _ => return Err(err),
                    }
                }
                Attempt::Lost(message) => {
                    inner.metrics.attempt("transport");
                    let err = ApiError::Transport { message, attempts };
                    if !req.is_idempotent() {
                        return Err(err);
                    }
                    failures += 1;
                    ("transport", err)
                }
            };
            if attempts - rate_limited >= inner.settings.max_attempts {
                inner.metrics.give_up("attempts");
                tracing::warn!(attempts, reason, "giving up: no attempts left");
                return Err(last);
            }
            // Rate limits wait in the pacer (the whole mall pauses); other failures back off here.
            let wait = if reason == "rate_limited" {
                Duration::ZERO
            } else {
                self.backoff(failures)
            };
            if timer.now() + wait > deadline {
                inner.metrics.give_up("deadline");
                tracing::warn!(attempts, reason, "giving up: the deadline would pass");
                return Err(ApiError::Deadline {
                    attempts,
                    last: Some(last.to_string()),
                });
            }
            inner.metrics.retry(reason);
            tracing::warn!(attempt = attempts, reason, wait_ms = wait.as_millis() as u64, error = %last, "retrying Cafe24 call");
            if !wait.is_zero() {
                timer.sleep_until(timer.now() + wait).await;
            }
        }
    }

    /// The generic call: `method path?query` with an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let mut req = Request::new(method, path)?.queries(query.iter().copied());
        if let Some(body) = body {
            req = req.json(body);
        }
        Ok(self.send(&req).await?.body)
    }

    async fn attempt(&self, req: &Request, token: &AccessToken) -> Attempt {
        let inner = &self.client.inner;
        let url = inner.base_url.endpoint(&self.mall, &req.full_path());
        let mut builder = inner
            .http
            .request(req.method.clone(), url)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(version) = &inner.api_version {
            builder = builder.header("X-Cafe24-Api-Version", version);
        }
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Lost(describe(&e)),
        };
        let status = response.status().as_u16();
        let limit = LimitReport::from_headers(response.headers());
        match response.bytes().await {
            Ok(body) => Attempt::Answered {
                status,
                body: body.to_vec(),
                limit,
            },
            Err(e) => Attempt::Lost(describe(&e)),
        }
    }

    /// Exponential backoff with equal jitter: half fixed, half random.
    fn backoff(&self, failures: u32) -> Duration {
        let s = &self.client.inner.settings;
        let exp = s
            .backoff_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(s.backoff_max);
        let half = exp / 2;
        half + half.mul_f64(rand::thread_rng().gen::<f64>())
    }
}

/// A transport error without its URL (which is ours, but may carry a caller's query).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}
