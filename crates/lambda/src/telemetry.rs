//! Logs on stderr (CloudWatch), as `serve` writes them, with one difference: `lambda_runtime`
//! logs every raw event at TRACE level — the callback's `code` and `state` with it — so its
//! level is capped at DEBUG whatever `RUST_LOG` says.

use cafe24_core::settings::LogFormat;
use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,tower_http=warn";
const CAPS: &[&str] = &["lambda_runtime=debug", "lambda_http=debug"];

pub(crate) fn init(format: LogFormat) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    for cap in CAPS {
        if let Ok(directive) = cap.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
