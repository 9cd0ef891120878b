//! Everything a case can reach: the sandbox (Cafe24), the target's servers, its database, the
//! secrets the kit generated, and what the kit has seen (codes, states, tokens) so the logs can
//! be searched for them at the end.

use std::path::PathBuf;
use std::sync::Mutex;

use cafe24_sandbox::{RunningSandbox, StatsSnapshot};
use reqwest::header::HeaderMap;
use sqlx::PgPool;

use crate::args::CommandLine;
use crate::check::{Context, Failure};
use crate::env::Secrets;

/// The values the kit saw pass by that must never appear in the target's output.
#[derive(Debug, Default)]
pub struct Seen {
    pub codes: Vec<String>,
    pub states: Vec<String>,
    pub tokens: Vec<String>,
}

/// How to start one more copy of the server command (with a different environment).
pub struct Launcher {
    pub command: CommandLine,
    pub env: Vec<(String, String)>,
    pub logs: PathBuf,
    pub startup: std::time::Duration,
}

pub struct World<'a> {
    pub sandbox: &'a RunningSandbox,
    pub db: &'a PgPool,
    pub secrets: &'a Secrets,
    pub http: reqwest::Client,
    /// Base URLs of the processes serving HTTP; the first one's callback is the redirect URI.
    pub servers: Vec<String>,
    pub redirect_uri: String,
    /// Makes mall ids unique to this run (a database given with --database-url may be reused).
    pub run_id: String,
    pub seen: Mutex<Seen>,
    pub launcher: Launcher,
    /// Log files of processes started by cases (scanned for secrets too).
    pub extra_logs: Mutex<Vec<PathBuf>>,
    /// Log files of the fleet.
    pub fleet_logs: Vec<PathBuf>,
}

/// An HTTP answer, read completely.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Result<Self, Failure> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.context("reading the body")?;
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The status and the start of the body, for failure messages.
    pub fn summary(&self) -> String {
        let body: String = self.body.chars().take(160).collect();
        format!("{} {}", self.status, body.trim())
    }
}

impl World<'_> {
    /// A mall id for one case, unique to this run (at most 32 characters).
    pub fn mall(&self, slug: &str) -> String {
        format!("{slug}-{}", self.run_id)
    }

    /// The `i`-th server, round robin.
    pub fn server(&self, i: usize) -> &str {
        &self.servers[i % self.servers.len()]
    }

    pub fn stats(&self, mall: &str) -> StatsSnapshot {
        self.sandbox.stats(mall).unwrap_or_default()
    }

    pub async fn get(&self, url: &str) -> Result<Answer, Failure> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(reqwest::Error::without_url);
        let response = response.context(&format!("GET {}", shorten(url)))?;
        Answer::read(response).await
    }

    pub fn remember_code(&self, code: &str) {
        lock(&self.seen).codes.push(code.to_owned());
    }

    pub fn remember_state(&self, state: &str) {
        lock(&self.seen).states.push(state.to_owned());
    }

    pub fn remember_token(&self, token: &str) {
        lock(&self.seen).tokens.push(token.to_owned());
    }
}

/// At most 120 characters of `text` (URLs in messages can carry kilobytes of test input).
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
