//! The command line, as clap types. Values are validated before any subcommand runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cafe24-oauth", version, about = "The OAuth backbone for Cafe24 apps", long_about = None)]
pub struct Cli {
    /// A TOML file of settings (keys are the environment variable names; the environment wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One command, nothing to configure: a local Cafe24, the server and the worker walk
    /// install → consent → callback → exchange → API call → refresh.
    Demo,
    /// Serve /install, /oauth/callback, /healthz, /readyz, /metrics and /openapi.json, with the
    /// worker in-process unless --no-worker.
    Serve(ServeArgs),
    /// Exchange codes as they arrive and keep every mall's tokens alive.
    Worker,
    /// Exchange the stored codes.
    Exchange(ExchangeArgs),
    /// Refresh tokens: those due for keep-alive (--once) or every active mall (--all).
    Refresh(RefreshArgs),
    /// Installed malls and the health of their tokens.
    Malls(MallsArgs),
    /// Print a valid access token for a mall (refreshing it first if needed).
    Token(MallArg),
    /// Revoke a mall's tokens at Cafe24 and mark it revoked.
    Revoke(MallArg),
    /// Re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEYS.
    Reencrypt,
    /// Webhook maintenance.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Call the Admin API for a mall (paced, retried, token managed) and print the JSON answer.
    Api(ApiArgs),
    /// Apply database migrations (safe to run again).
    Migrate,
    /// Print a fresh TOKEN_ENCRYPTION_KEYS entry (id:BASE64 of 32 random bytes).
    Keygen(KeygenArgs),
    /// Run a local Cafe24 emulator (OAuth, Admin API, rate limits, webhooks, faults).
    Sandbox(Box<cafe24_sandbox::cli::SandboxArgs>),
    /// Write the Cafe24 OAuth module into an app from the pipeline's task-oauth.md, and
    /// result-oauth.md back; regenerating merges the user's edits, never overwrites them.
    /// Exit codes: 0 done, 1 failure or --check found differences, 2 invalid task, 3 conflicts.
    Generate(GenerateArgs),
    /// Check an implementation of the contract (this one or your own app), black-box.
    Conformance(Box<cafe24_conformance::ConformanceArgs>),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The task file (relative to the current directory).
    #[arg(long, value_name = "FILE", default_value = cafe24_generate::DEFAULT_TASK)]
    pub task: PathBuf,
    /// Where the result is written.
    #[arg(long, value_name = "FILE", default_value = cafe24_generate::DEFAULT_RESULT)]
    pub result: PathBuf,
    /// Print the plan and write nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// With --dry-run: print the diffs too.
    #[arg(long, requires = "dry_run")]
    pub diff: bool,
    /// Exit 1 when the tree differs from what this generator would produce (for CI).
    #[arg(long)]
    pub check: bool,
    /// Overwrite files the user edited (the only way to discard an edit).
    #[arg(long, conflicts_with_all = ["check", "dry_run"])]
    pub force: bool,
    /// Write the subagent definition .claude/agents/cafe24-oauth-generator.md and exit.
    #[arg(long, conflicts_with_all = ["check", "dry_run", "force"])]
    pub agent: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Do not apply pending migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
    /// Do not run the exchange and keep-alive worker in this process.
    #[arg(long)]
    pub no_worker: bool,
}

#[derive(Debug, Args)]
pub struct ExchangeArgs {
    /// One pass over the queue, then exit (for schedulers). Required: the continuous form is
    /// `worker`.
    #[arg(long, required = true)]
    pub once: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RefreshArgs {
    /// One keep-alive pass: refresh malls whose refresh token expires within the window.
    #[arg(long)]
    pub once: bool,
    /// Refresh every active mall now (with a progress bar on a terminal).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct MallsArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MallArg {
    /// The mall id (lowercase letters, digits, '-', '_').
    #[arg(value_parser = parse_mall)]
    pub mall_id: cafe24_core::MallId,
}

fn parse_mall(raw: &str) -> Result<cafe24_core::MallId, String> {
    cafe24_core::MallId::parse(raw).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key id (letters, digits, '-', '_'); defaults to k + today's date.
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cafe24-oauth api shop1 GET /products/count\n  cafe24-oauth api shop1 GET /products --query display=T --all > products.json\n  cafe24-oauth api shop1 PUT /products/12/variants/P00000LA000A --data '{\"shop_no\":1,\"request\":{\"quantity\":5}}'"
)]
pub struct ApiArgs {
    /// The mall id.
    #[arg(value_parser = parse_mall)]
    pub mall_id: cafe24_core::MallId,
    /// GET, POST, PUT or DELETE.
    #[arg(value_parser = parse_method)]
    pub method: cafe24_client::Method,
    /// A path under /api/v2/admin, e.g. /products or /products/12/variants.
    pub path: String,
    /// A query parameter (repeatable).
    #[arg(long = "query", short = 'q', value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub query: Vec<(String, String)>,
    /// The JSON body: inline, @FILE, or @- for standard input.
    #[arg(long, value_name = "JSON|@FILE", value_parser = parse_data)]
    pub data: Option<serde_json::Value>,
    /// Read every page of a list endpoint (GET) and print one JSON array.
    #[arg(long)]
    pub all: bool,
    /// Retry a POST after a server error or a lost answer (only if sending it twice is harmless).
    #[arg(long)]
    pub retry_post: bool,
}

fn parse_method(raw: &str) -> Result<cafe24_client::Method, String> {
    match raw.to_ascii_uppercase().as_str() {
        "GET" => Ok(cafe24_client::Method::GET),
        "POST" => Ok(cafe24_client::Method::POST),
        "PUT" => Ok(cafe24_client::Method::PUT),
        "DELETE" => Ok(cafe24_client::Method::DELETE),
        _ => Err("must be GET, POST, PUT or DELETE".into()),
    }
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("must be KEY=VALUE".into()),
    }
}

fn parse_data(raw: &str) -> Result<serde_json::Value, String> {
    let text = match raw.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?,
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => raw.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Read Cafe24's delivery logs: confirm stored events, store (and dispatch) missed ones.
    Reconcile(OptionalMall),
}

#[derive(Debug, Args)]
pub struct OptionalMall {
    /// One mall (default: every active mall).
    #[arg(value_parser = parse_mall)]
    pub mall_id: Option<cafe24_core::MallId>,
}
