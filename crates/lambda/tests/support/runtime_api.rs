//! A local AWS Lambda Runtime API (the HTTP interface a custom runtime polls), on 127.0.0.1 with
//! axum: `GET /2018-06-01/runtime/invocation/next` hands out queued events with the
//! `Lambda-Runtime-*` headers, `POST …/invocation/{id}/response|error` and `POST …/init/error`
//! are recorded. Shared by the integration tests and the benchmark (`examples/lambda_bench.rs`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

/// Longest a test waits for one invocation's answer (a hang must fail, not block forever).
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST /invocation/{id}/response`: the function's result.
    Response(Value),
    /// `POST /invocation/{id}/error`.
    Error { error_type: String, message: String },
}

impl Outcome {
    pub fn response(self) -> Value {
        match self {
            Outcome::Response(v) => v,
            Outcome::Error {
                error_type,
                message,
            } => {
                panic!("invocation failed: {error_type}: {message}")
            }
        }
    }
}

/// What arrived at `/init/error`.
#[derive(Debug, Clone)]
pub struct InitErrorReport {
    pub error_type_header: Option<String>,
    pub body: Value,
}

struct Queued {
    id: String,
    payload: Value,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_errors: mpsc::UnboundedSender<InitErrorReport>,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    enqueue: mpsc::UnboundedSender<Queued>,
    init_errors: tokio::sync::Mutex<mpsc::UnboundedReceiver<InitErrorReport>>,
    next_id: std::sync::atomic::AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (enqueue, queue) = mpsc::unbounded_channel();
        let (init_tx, init_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            init_errors: init_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the runtime API");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            enqueue,
            init_errors: tokio::sync::Mutex::new(init_rx),
            next_id: std::sync::atomic::AtomicU64::new(1),
            server,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `payload` for the function and waits for its answer.
    pub async fn invoke(&self, payload: Value) -> Outcome {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("8f3e2b1c-0000-4000-8000-{n:012}");
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id.clone(), tx);
        self.enqueue
            .send(Queued { id, payload })
            .expect("runtime API running");
        tokio::time::timeout(INVOKE_TIMEOUT, rx)
            .await
            .expect("the function answers in time")
            .expect("answer recorded")
    }

    /// The next `/init/error` report, if one arrives within `wait`.
    pub async fn init_error(&self, wait: Duration) -> Option<InitErrorReport> {
        let mut rx = self.init_errors.lock().await;
        tokio::time::timeout(wait, rx.recv()).await.ok().flatten()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    // Long poll, as Lambda does: the runtime waits here until an event is queued.
    let queued = shared.queue.lock().await.recv().await;
    let Some(Queued { id, payload }) = queued else {
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 60_000;
    (
        [
            ("Lambda-Runtime-Aws-Request-Id", id),
            ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:cafe24-test".to_owned(),
            ),
            (
                "Lambda-Runtime-Trace-Id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                    .to_owned(),
            ),
            ("Content-Type", "application/json".to_owned()),
        ],
        payload.to_string(),
    )
        .into_response()
}

async fn respond(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    settle(&shared, &id, Outcome::Response(value))
}

async fn fail(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| value[k].as_str().unwrap_or_default().to_owned();
    let outcome = Outcome::Error {
        error_type: field("errorType"),
        message: field("errorMessage"),
    };
    settle(&shared, &id, outcome)
}

fn settle(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&shared.pending).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        // Lambda answers an unknown or already answered id with 400 (InvalidRequestID).
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let report = InitErrorReport {
        error_type_header: headers
            .get("Lambda-Runtime-Function-Error-Type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let _ = shared.init_errors.send(report);
    StatusCode::ACCEPTED
}

/// A function process: a runtime (the `bootstrap` binary, or any other command) started the
/// way Lambda starts one, pointed at `api`. Killed when dropped. Its stderr is collected.
pub struct FunctionProcess {
    pub child: tokio::process::Child,
    pub pid: u32,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
}

/// Copies a child's pipe into `sink` until it closes.
fn drain(mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            lock(&sink).extend_from_slice(&buf[..n]);
        }
    });
}

impl FunctionProcess {
    pub fn spawn(program: &Path, args: &[&str], api: &RuntimeApi, env: &[(&str, String)]) -> Self {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "cafe24-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/cafe24-test")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]0123456789abcdef",
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the function process");
        let pid = child.id().expect("pid");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            drain(pipe, stderr.clone());
        }
        if let Some(pipe) = child.stdout.take() {
            drain(pipe, stdout.clone());
        }
        Self {
            child,
            pid,
            stderr,
            stdout,
        }
    }

    /// Everything the process wrote to stdout so far (its EMF metric records).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stdout)).into_owned()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// Waits for the process to exit (at most `wait`) and returns its exit code.
    pub async fn exit_code(&mut self, wait: Duration) -> Option<i32> {
        tokio::time::timeout(wait, self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }
}
