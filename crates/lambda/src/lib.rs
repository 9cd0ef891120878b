//! The AWS Lambda face of cafe24-oauth: one `bootstrap` binary (a custom runtime for
//! `provided.al2023`) that runs one of three handlers, chosen by `CAFE24_LAMBDA_HANDLER`:
//!
//! - `http` (the default): the very router `serve` uses, through `lambda_http`, for API Gateway
//!   REST (v1) and HTTP (v2) events — `GET /oauth/callback` stores the code;
//! - `exchange`: one pass of the exchange queue, for a scheduled (EventBridge) or internal
//!   invocation, answering a small JSON summary;
//! - `refresh`: one keep-alive pass, likewise.
//!
//! Configuration comes from the same environment variables as the `cafe24-oauth` binary;
//! PostgreSQL only. Everything is built once at init — the store and its connection pool
//! included — and outlives warm invocations; a connection the database dropped is replaced on
//! the next use, never fatal. An init failure is reported to the Runtime API's `/init/error`.

mod config;
pub mod emf;
mod http;
mod init_error;
mod jobs;
mod telemetry;

use std::sync::Arc;

use cafe24_core::settings::{AppSettings, LogFormat, Settings, Source, TokenSettings};
use cafe24_core::SystemClock;
use cafe24_server::AppState;
use cafe24_tokens::{OAuthClient, TokenManager};

pub use config::{Handler, LambdaSettings, HANDLER_VAR, MIGRATE_VAR};
pub use init_error::InitError;

/// A function ready to serve invocations: everything built, nothing yet received.
pub enum Function {
    Http(axum::Router),
    /// The manager, and how long an invocation keeps listening for codes.
    Exchange(Arc<TokenManager>, Option<std::time::Duration>),
    Refresh(Arc<TokenManager>),
}

impl Function {
    /// Reads the settings, opens the store (and migrates, if told to) and builds the handler.
    pub async fn init(source: &Source) -> Result<Self, InitError> {
        let lambda = LambdaSettings::load(source)?;
        // CloudWatch shows escape codes verbatim: JSON logs unless asked otherwise.
        let format = match source.get("LOG_FORMAT") {
            Some(_) => LogFormat::load(source)?,
            None => LogFormat::Json,
        };
        let function = match lambda.handler {
            Handler::Http => {
                let settings = Settings::load(source)?;
                telemetry::init(format);
                let store = lambda.open_store().await?;
                let state = AppState::new(&settings, store);
                Function::Http(cafe24_server::router(state, &settings.http))
            }
            Handler::Exchange | Handler::Refresh => {
                let app = AppSettings::load(source)?;
                let tokens = TokenSettings::load(source)?;
                telemetry::init(format);
                let store = lambda.open_store().await?;
                let oauth = OAuthClient::new(Arc::new(app), tokens.http_timeout)
                    .map_err(|e| InitError::startup(format!("building the HTTP client: {e}")))?;
                let manager = Arc::new(TokenManager::new(
                    store,
                    oauth,
                    tokens,
                    Arc::new(SystemClock),
                ));
                if lambda.handler == Handler::Exchange {
                    Function::Exchange(manager, lambda.exchange_listen)
                } else {
                    Function::Refresh(manager)
                }
            }
        };
        tracing::info!(handler = %lambda.handler, "lambda function initialised");
        Ok(function)
    }

    /// Serves invocations from the Runtime API until it goes away.
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        match self {
            Function::Http(router) => http::run(router).await,
            Function::Exchange(manager, listen) => jobs::run_exchange(manager, listen).await,
            Function::Refresh(manager) => jobs::run_refresh(manager).await,
        }
    }
}

/// The whole life of the process: read the environment, init (reporting a failure to
/// `/init/error`), then serve.
pub async fn main() -> Result<(), Failure> {
    let init = match Source::load(None) {
        Ok(source) => Function::init(&source).await,
        Err(e) => Err(e.into()),
    };
    let function = match init {
        Ok(function) => function,
        Err(e) => {
            init_error::report(&e).await;
            return Err(Failure::Init(e));
        }
    };
    function.run().await.map_err(Failure::Runtime)
}

/// Why the process ended.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Init(InitError),
    #[error("lambda runtime: {0}")]
    Runtime(lambda_runtime::Error),
}

impl Failure {
    /// 2 for a configuration error, 1 otherwise (as the `cafe24-oauth` binary does).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Init(InitError::Config(_)) => 2,
            _ => 1,
        }
    }
}
