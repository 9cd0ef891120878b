//! The client: one per process, shared by every task; [`Client::mall`] binds it to a mall.
//! A call takes the mall's token, waits for room in its bucket — on PostgreSQL the mall's
//! fleet-wide budget, shared by every process (contract §6.8), with this process's
//! conservative share of it as the fallback while the database does not answer — sends, and
//! retries as the
//! answer allows: a 401 once after a forced refresh, a 429 after the pause Cafe24 asks for,
//! 500/503/504 and lost answers with exponential backoff and jitter — the latter only for
//! idempotent requests — within a bounded number of attempts and an overall deadline.

use std::sync::Arc;
use std::time::Duration;

use cafe24_core::secret::AccessToken;
use cafe24_core::settings::{AppSettings, ClientSettings};
use cafe24_core::{BaseUrlTemplate, MallId};
use cafe24_store::{ApiBudget, Backend, BudgetTake};
use cafe24_tokens::TokenManager;
use rand::Rng;
use serde_json::Value;

use crate::metrics::ClientMetrics;
use crate::pacer::{BucketSpec, LimitReport, MallPacer, Pacers, PastDeadline, MAX_PAUSE};
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
    /// In process: the mall's whole bucket (SQLite), or the fallback share (PostgreSQL).
    pacers: Pacers,
    /// The fleet-wide budget drawn from first, on PostgreSQL.
    shared: Option<ApiBudget>,
    metrics: ClientMetrics,
}

/// While the shared budget cannot be reached, a process paces itself on this share of the
/// bucket (depth and drain): four processes falling back together still stay within it.
pub const FALLBACK_SHARE: f64 = 0.25;

/// Calls of headroom the shared budget keeps below Cafe24's bucket: calls leave on the
/// database's schedule but reach Cafe24 with a few milliseconds of jitter each, and the first
/// ones of a burst also set up connections, so Cafe24's bucket may run a fraction of a call
/// ahead of the mirror.
pub const SHARED_HEADROOM: f64 = 1.0;

/// How long drawing from the shared budget may take before the fallback share is used.
const BUDGET_TIMEOUT: Duration = Duration::from_secs(1);

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
        let shared = (tokens.store().backend() == Backend::Postgres).then_some(ApiBudget {
            size: spec.size,
            drain_per_sec: spec.drain_per_sec,
        });
        let spec = if shared.is_some() {
            BucketSpec {
                size: (spec.size * FALLBACK_SHARE).max(1.0),
                drain_per_sec: spec.drain_per_sec * FALLBACK_SHARE,
            }
        } else {
            spec
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                tokens,
                base_url: app.base_url.clone(),
                api_version: app.api_version.clone(),
                settings,
                pacers: Pacers::new(spec, timer),
                shared,
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

    /// The in-process pacers: the whole bucket on SQLite, the fallback share on PostgreSQL.
    pub fn pacers(&self) -> &Pacers {
        &self.inner.pacers
    }

    /// The fleet-wide budget calls draw from (PostgreSQL), if any.
    pub fn shared_budget(&self) -> Option<ApiBudget> {
        self.inner.shared
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
            let Ok(level) = self.pace(deadline).await else {
                inner.metrics.give_up("deadline");
                return Err(ApiError::Deadline {
                    attempts,
                    last: Some("waiting for room in the mall's bucket".into()),
                });
            };
            attempts += 1;
            let (reason, last) = match self.attempt(req, &token).await {
                Attempt::Answered {
                    status,
                    body,
                    limit,
                } => {
                    inner.metrics.attempt(&status.to_string());
                    self.pacer.observe(&limit);
                    if status != 429 {
                        self.correct_shared(level, &limit).await;
                    }
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
                            self.share_limited(wait).await;
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

    /// Waits for room for one call. On PostgreSQL the call is charged to the mall's shared
    /// budget and the level it goes at is returned; if that budget does not answer within
    /// [`BUDGET_TIMEOUT`], the process's fallback share paces it instead.
    async fn pace(&self, deadline: Duration) -> Result<Option<f64>, PastDeadline> {
        let inner = &self.client.inner;
        let timer = inner.pacers.timer();
        if let Some(budget) = inner.shared {
            let max_wait = deadline.saturating_sub(timer.now());
            let scheduled = ApiBudget {
                size: (budget.size - SHARED_HEADROOM).max(1.0),
                ..budget
            };
            let taken = tokio::time::timeout(
                BUDGET_TIMEOUT,
                inner
                    .tokens
                    .store()
                    .take_api_call(&self.mall, scheduled, max_wait),
            )
            .await;
            match taken {
                Ok(Ok(Some(BudgetTake::Go { wait, level }))) => {
                    inner.metrics.budget("shared");
                    if !wait.is_zero() {
                        timer.sleep_until(timer.now() + wait).await;
                    }
                    return Ok(Some(level));
                }
                Ok(Ok(Some(BudgetTake::TooLong))) => return Err(PastDeadline),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the shared API budget is unreachable; pacing on this process's share");
                }
                Err(_) => {
                    tracing::warn!("the shared API budget did not answer in time; pacing on this process's share");
                }
            }
            inner.metrics.budget("fallback");
        }
        self.pacer.acquire(Some(deadline)).await.map(|()| None)
    }

    /// Corrects the shared budget when an answer shows more use than it held (calls from
    /// outside the fleet) or asks for a pause; otherwise costs nothing.
    async fn correct_shared(&self, level: Option<f64>, limit: &LimitReport) {
        let inner = &self.client.inner;
        let (Some(budget), Some(level)) = (inner.shared, level) else {
            return;
        };
        let used = limit
            .call_limit
            .map(|(used, _)| f64::from(used).min(budget.size))
            .filter(|used| *used > level + 1.0);
        let pause = limit.remain_secs.map(Duration::from_secs);
        if used.is_none() && pause.is_none() {
            return;
        }
        self.observe_shared(budget, used, pause).await;
    }

    /// A 429: the bucket is full whatever the budget thought, and paused.
    async fn share_limited(&self, pause: Duration) {
        if let Some(budget) = self.client.inner.shared {
            self.observe_shared(budget, Some(budget.size), Some(pause.min(MAX_PAUSE)))
                .await;
        }
    }

    async fn observe_shared(&self, budget: ApiBudget, used: Option<f64>, pause: Option<Duration>) {
        let store = self.client.inner.tokens.store();
        let observed = tokio::time::timeout(
            BUDGET_TIMEOUT,
            store.observe_api_limit(&self.mall, budget, used, pause),
        )
        .await;
        if !matches!(observed, Ok(Ok(()))) {
            tracing::warn!("could not correct the shared API budget; the next answer will");
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
