//! Building the router and the application that serves it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::{middleware, Router};
use cafe24_core::settings::{AppSettings, HttpSettings, LaunchSettings, Settings};
use cafe24_core::{Clock, StateSigner, SystemClock};
use cafe24_store::Store;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;

use crate::metrics::Metrics;
use crate::routes;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub signer: StateSigner,
    pub app: Arc<AppSettings>,
    pub launch: LaunchSettings,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: std::time::Duration,
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Signalled when a code is stored, so an in-process worker exchanges it at once.
    pub code_stored: Arc<tokio::sync::Notify>,
    /// The Admin API forwarding proxy, when `CAFE24_ADMIN_TOKEN` is set (off by default).
    pub proxy: Option<Arc<crate::Proxy>>,
    /// How webhook deliveries are verified and keyed.
    pub webhooks: Arc<WebhookIntake>,
}

/// The receiving side of `POST /webhooks/cafe24`.
pub struct WebhookIntake {
    pub verifier: cafe24_webhooks::Verifier,
    pub trace_header: Option<String>,
    /// Signalled when an event is stored, so an in-process dispatcher acts at once.
    pub stored: Arc<tokio::sync::Notify>,
}

impl WebhookIntake {
    pub fn new(settings: &cafe24_core::settings::WebhookSettings) -> Self {
        use cafe24_core::settings::WebhookAuth;
        match settings.auth {
            WebhookAuth::Unconfigured => tracing::warn!(
                "POST /webhooks/cafe24 refuses every delivery until CAFE24_WEBHOOK_AUTH is set (api-key, hmac-hex, hmac-base64)"
            ),
            WebhookAuth::InsecureNone => tracing::warn!(
                "POST /webhooks/cafe24 accepts deliveries WITHOUT verification (CAFE24_WEBHOOK_AUTH=insecure-none)"
            ),
            _ => {}
        }
        Self {
            verifier: cafe24_webhooks::Verifier::new(settings),
            trace_header: settings.trace_header.clone(),
            stored: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl AppState {
    pub fn new(settings: &Settings, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            signer: StateSigner::new(settings.state.key.clone(), settings.state.ttl),
            app: Arc::new(settings.app.clone()),
            launch: settings.launch,
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(SystemClock),
            request_timeout: settings.http.request_timeout,
            max_body_bytes: settings.http.max_body_bytes,
            code_stored: Arc::new(tokio::sync::Notify::new()),
            proxy: None,
            webhooks: Arc::new(WebhookIntake::new(&settings.webhooks)),
        }
    }
}

/// The router with its limits: request timeout, body size, URI length.
pub fn router(state: AppState, http: &HttpSettings) -> Router {
    Router::new()
        .merge(routes::proxy::routes(state.proxy.is_some()))
        .route("/install", get(routes::install::install))
        .route("/oauth/callback", get(routes::callback::callback))
        .route(
            "/webhooks/cafe24",
            axum::routing::post(routes::webhooks::receive),
        )
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(routes::health::openapi))
        .fallback(routes::health::not_found)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .layer(RequestBodyLimitLayer::new(http.max_body_bytes))
        .layer(middleware::from_fn(crate::negotiate::negotiate))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::observe::observe,
        ))
        .with_state(state)
}

/// A bound listener and the router it will serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds `settings.http.listen_addr` (port 0 picks a free port, as tests do).
    pub async fn build(settings: &Settings, store: Arc<dyn Store>) -> std::io::Result<Self> {
        let state = AppState::new(settings, store);
        Self::with_state(state, &settings.http).await
    }

    pub async fn with_state(state: AppState, http: &HttpSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(http.listen_addr).await?;
        Ok(Self::with_listener(listener, state, http))
    }

    /// Serves on a listener bound beforehand (when the address must be known earlier, e.g. to
    /// register the redirect URI before the settings exist).
    pub fn with_listener(listener: TcpListener, state: AppState, http: &HttpSettings) -> Self {
        Self {
            listener,
            router: router(state, http),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
