//! Init failures, and reporting them to the Runtime API (`POST /runtime/init/error`) so Lambda
//! shows the one-line reason instead of a bare exit.

use cafe24_core::settings::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A missing or malformed setting (the message names the variable).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The settings are fine but something could not be built (e.g. migrations failed).
    #[error("{0}")]
    Startup(String),
}

impl InitError {
    pub(crate) fn startup(message: impl Into<String>) -> Self {
        InitError::Startup(message.into())
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            InitError::Config(_) => "Runtime.ConfigError",
            InitError::Startup(_) => "Runtime.InitError",
        }
    }
}

/// Posts `error` to `/2018-06-01/runtime/init/error`; a failure to report is only logged (the
/// process exits non-zero either way, which Lambda also records).
pub(crate) async fn report(error: &InitError) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!("error: AWS_LAMBDA_RUNTIME_API is not set; cannot report the init error");
        return;
    };
    let body = serde_json::json!({
        "errorType": error.error_type(),
        "errorMessage": error.to_string(),
    });
    let sent = reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", error.error_type())
        .json(&body)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    if let Err(e) = sent.and_then(reqwest::Response::error_for_status) {
        eprintln!("error: reporting the init error failed: {e}");
    }
}
