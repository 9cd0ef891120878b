//! The `exchange` and `refresh` handlers: one pass each per invocation, whatever the event (an
//! EventBridge schedule or an internal invoke), answering a small JSON summary. A database that
//! cannot be reached fails the invocation (Lambda counts it, a schedule retries); the store's
//! pool replaces dropped connections, so the next invocation starts clean.

use std::sync::Arc;

use std::time::Duration;

use cafe24_store::CodeWakeups;
use cafe24_tokens::keepalive::{due_malls, refresh_malls};
use cafe24_tokens::{ExchangeSummary, Exchanger, TokenManager};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};

pub(crate) async fn run_exchange(
    manager: Arc<TokenManager>,
    listen: Option<Duration>,
) -> Result<(), lambda_runtime::Error> {
    let exchanger = Exchanger::new(manager.clone());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (exchanger, manager) = (exchanger.clone(), manager.clone());
        let deadline = deadline_of(&event.context);
        async move { exchange_invocation(&exchanger, &manager, deadline, listen).await }
    }))
    .await
}

/// One invocation of the exchange function: a pass over the queue, then — so that a code the
/// callback stores is exchanged within a second, not at the next schedule — it stays, woken by
/// `NOTIFY` (or a short poll), exchanging codes as they arrive, until `listen` is over or the
/// deadline is too close to start another exchange. Overlapping invocations share the queue
/// through its claims; none runs past its deadline.
async fn exchange_invocation(
    exchanger: &Exchanger,
    manager: &TokenManager,
    deadline: tokio::time::Instant,
    listen: Option<Duration>,
) -> Result<Value, Diagnostic> {
    let started = tokio::time::Instant::now();
    let listen_until = listen.map_or(deadline, |l| (started + l).min(deadline));
    // An exchange needs the token call and its writes: none is started closer than this.
    let needed = manager.settings().http_timeout + Duration::from_secs(4);
    let mut total = ExchangeSummary::default();
    let mut wakeups: Option<CodeWakeups> = None;
    loop {
        let s = exchanger
            .drain_by(Some(deadline))
            .await
            .map_err(|e| failure("Cafe24.StoreError", &e))?;
        add(&mut total, s);
        let now = tokio::time::Instant::now();
        if now >= listen_until || now + needed >= deadline {
            break;
        }
        if wakeups.is_none() {
            wakeups = Some(manager.store().code_wakeups().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot LISTEN for new codes; polling instead");
                CodeWakeups::polling()
            }));
        }
        let idle = if wakeups.as_ref().is_some_and(CodeWakeups::is_listening) {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(200)
        };
        let wait = idle.min(listen_until.saturating_duration_since(now));
        if let Some(w) = wakeups.as_mut() {
            w.wait(wait).await;
        }
    }
    exchange_answer(total, started.elapsed())
}

fn add(total: &mut ExchangeSummary, s: ExchangeSummary) {
    total.expired += s.expired;
    total.claimed += s.claimed;
    total.exchanged += s.exchanged;
    total.failed += s.failed;
    total.retried += s.retried;
}

pub(crate) async fn run_refresh(manager: Arc<TokenManager>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let manager = manager.clone();
        let deadline = deadline_of(&event.context);
        async move { refresh_pass(&manager, deadline).await }
    }))
    .await
}

/// The invocation's deadline on the monotonic clock. Lambda freezes the function the moment
/// the handler returns, so a refresh or exchange must never be started that could not finish
/// (and store its result) before it: the handlers below start none without the time for it.
pub(crate) fn deadline_of(context: &lambda_runtime::Context) -> tokio::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = std::time::Duration::from_millis(context.deadline.saturating_sub(now_ms));
    tokio::time::Instant::now() + left
}

fn exchange_answer(s: ExchangeSummary, took: Duration) -> Result<Value, Diagnostic> {
    let count = |n: usize| n as f64;
    crate::emf::emit(
        "exchange",
        &[],
        &[
            ("CodesClaimed", count(s.claimed), "Count"),
            ("CodesExchanged", count(s.exchanged), "Count"),
            ("CodesExpired", s.expired as f64, "Count"),
            ("CodesFailed", count(s.failed), "Count"),
            ("CodesRetried", count(s.retried), "Count"),
        ],
    );
    tracing::info!(
        claimed = s.claimed,
        exchanged = s.exchanged,
        failed = s.failed,
        expired = s.expired,
        retried = s.retried,
        listened_ms = took.as_millis() as u64,
        "exchange invocation"
    );
    Ok(json!({
        "handler": "exchange",
        "claimed": s.claimed,
        "exchanged": s.exchanged,
        "failed": s.failed,
        "expired": s.expired,
        "retried": s.retried,
    }))
}

async fn refresh_pass(
    manager: &Arc<TokenManager>,
    deadline: tokio::time::Instant,
) -> Result<Value, Diagnostic> {
    let window = manager.settings().keepalive_window;
    let malls = due_malls(manager, window)
        .await
        .map_err(|e| failure("Cafe24.StoreError", &e))?;
    // Nothing stops a pass half-way: a refresh cut off after sending could lose the mall. The
    // deadline keeps any refresh from being sent that could not be finished in time.
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let s = refresh_malls(manager, malls, window, &stop, Some(deadline), &|| {}).await;
    tracing::info!(
        due = s.due,
        refreshed = s.refreshed,
        skipped = s.skipped,
        failed = s.failed,
        "keep-alive pass"
    );
    crate::emf::emit(
        "refresh",
        &[],
        &[
            ("MallsDue", s.due as f64, "Count"),
            ("MallsRefreshed", s.refreshed as f64, "Count"),
            ("RefreshesSkipped", s.skipped as f64, "Count"),
            ("RefreshesFailed", s.failed as f64, "Count"),
        ],
    );
    if s.failed > 0 {
        // An error, so it shows in the function's Errors metric; the retry skips fresh malls.
        return Err(Diagnostic {
            error_type: "Cafe24.RefreshFailed".into(),
            error_message: format!(
                "{} of {} mall(s) could not be refreshed; see the log",
                s.failed, s.due
            ),
        });
    }
    Ok(json!({
        "handler": "refresh",
        "due": s.due,
        "refreshed": s.refreshed,
        "skipped": s.skipped,
        "failed": s.failed,
    }))
}

fn failure(error_type: &str, error: &dyn std::error::Error) -> Diagnostic {
    tracing::error!(error = %error, "pass failed");
    Diagnostic {
        error_type: error_type.into(),
        error_message: error.to_string(),
    }
}
