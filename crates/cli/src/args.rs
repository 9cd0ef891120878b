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
    /// Serve /install, /oauth/callback, /healthz, /readyz, /metrics and /openapi.json.
    Serve(ServeArgs),
    /// Apply database migrations (safe to run again).
    Migrate,
    /// Print a fresh TOKEN_ENCRYPTION_KEYS entry (id:BASE64 of 32 random bytes).
    Keygen(KeygenArgs),
    /// Run a local Cafe24 emulator (OAuth, Admin API, rate limits, webhooks, faults).
    Sandbox(Box<cafe24_sandbox::cli::SandboxArgs>),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Do not apply pending migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key id (letters, digits, '-', '_'); defaults to k + today's date.
    #[arg(long)]
    pub id: Option<String>,
}
