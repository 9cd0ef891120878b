//! The processes of the implementation under test: started in process groups of their own
//! with the contract's environment and their output captured to files, waited for until they
//! answer `GET /healthz`, and stopped with SIGTERM, then SIGKILL after a bound — also when
//! the kit itself is interrupted or panics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::args::CommandLine;
use crate::error::KitError;
use crate::postgres::tail;

/// How long a process may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Environment variables of the kit's own environment that are never passed on: the
/// contract's names, so nothing from the caller's shell leaks into the target, and proxies.
fn inherited(name: &str) -> bool {
    const CONTRACT: &[&str] = &[
        "EXPECTED_STATE_SECRET",
        "TOKEN_ENCRYPTION_KEYS",
        "LISTEN_ADDR",
        "PORT",
        "HTTP_REQUEST_TIMEOUT_SECS",
        "HTTP_MAX_BODY_BYTES",
    ];
    // Everything is on loopback: a proxy from the caller's shell would only get in the way.
    const PROXIES: &[&str] = &["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"];
    let proxy = PROXIES.iter().any(|p| p.eq_ignore_ascii_case(name));
    let prefixed = ["CAFE24_", "PG", "DATABASE_"]
        .iter()
        .any(|p| name.starts_with(p));
    !(prefixed || CONTRACT.contains(&name) || proxy)
}

/// What to start.
pub struct Spec {
    pub name: String,
    pub command: CommandLine,
    pub env: Vec<(String, String)>,
    pub port: u16,
    /// Serves HTTP (waited for on /healthz); otherwise a background process.
    pub serves_http: bool,
}

pub struct Process {
    pub name: String,
    pub port: u16,
    pub serves_http: bool,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    child: Child,
    pid: Option<u32>,
}

impl Process {
    pub fn spawn(spec: Spec, logs: &Path) -> Result<Self, KitError> {
        let stdout = logs.join(format!("{}.stdout.log", spec.name));
        let stderr = logs.join(format!("{}.stderr.log", spec.name));
        let out = std::fs::File::create(&stdout).map_err(KitError::io("creating", &stdout))?;
        let err = std::fs::File::create(&stderr).map_err(KitError::io("creating", &stderr))?;
        let port = spec.port.to_string();
        let args = spec.command.args.iter().map(|a| a.replace("{port}", &port));
        let child = Command::new(&spec.command.program)
            .args(args)
            .env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(inherited)))
            .envs(spec.env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| KitError::Spawn {
                name: spec.name.clone(),
                program: spec.command.program.clone(),
                source,
            })?;
        Ok(Self {
            name: spec.name,
            port: spec.port,
            serves_http: spec.serves_http,
            stdout,
            stderr,
            pid: child.id(),
            child,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }

    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        match tail(&text, 20) {
            t if t.trim().is_empty() => "(empty)".to_owned(),
            t => t,
        }
    }

    /// Waits until `GET /healthz` answers 200, the process exits, or `within` passes.
    pub async fn wait_healthy(
        &mut self,
        http: &reqwest::Client,
        within: Duration,
    ) -> Result<(), KitError> {
        let deadline = Instant::now() + within;
        let url = format!("{}/healthz", self.base_url());
        loop {
            if let Some(status) = self.exited() {
                return Err(self.exited_error(status));
            }
            let answer = http.get(&url).timeout(Duration::from_secs(1)).send().await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(KitError::NotHealthy {
                    name: self.name.clone(),
                    secs: within.as_secs(),
                    log: self.stderr.clone(),
                    tail: self.stderr_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a one-shot command to finish successfully within `within`.
    pub async fn wait_success(&mut self, within: Duration) -> Result<(), KitError> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {
                self.pid = None;
                Ok(())
            }
            Ok(Ok(status)) => {
                self.pid = None;
                Err(self.exited_error(status.to_string()))
            }
            Ok(Err(e)) => Err(self.exited_error(format!("unknown status: {e}"))),
            Err(_) => Err(KitError::NotHealthy {
                name: self.name.clone(),
                secs: within.as_secs(),
                log: self.stderr.clone(),
                tail: self.stderr_tail(),
            }),
        }
    }

    pub fn exited_error(&self, status: String) -> KitError {
        KitError::Exited {
            name: self.name.clone(),
            status,
            log: self.stderr.clone(),
            tail: self.stderr_tail(),
        }
    }

    fn signal_group(&self, signal: &str) {
        if let Some(pid) = self.pid {
            let _ = std::process::Command::new("kill")
                .args(["-s", signal, "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Process {
    /// A backstop: whatever is left of the group when the kit lets go of it is killed.
    fn drop(&mut self) {
        if self.pid.is_some() {
            self.signal_group("KILL");
        }
    }
}

/// Every process the kit started.
#[derive(Default)]
pub struct Fleet {
    pub processes: Vec<Process>,
}

impl Fleet {
    pub fn servers(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(|p| p.serves_http)
    }

    pub fn log_files(&self) -> Vec<PathBuf> {
        self.processes
            .iter()
            .flat_map(|p| [p.stdout.clone(), p.stderr.clone()])
            .collect()
    }

    /// SIGTERM to every group, a bounded wait, then SIGKILL to whatever is left.
    pub async fn stop(&mut self) {
        stop_all(&mut self.processes).await;
    }
}

pub async fn stop_all(processes: &mut [Process]) {
    for p in processes.iter() {
        p.signal_group("TERM");
    }
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for p in processes.iter_mut() {
        let _ = tokio::time::timeout_at(deadline, p.child.wait()).await;
    }
    for p in processes.iter_mut() {
        // The group too: a shell or a reloader may have left children behind.
        p.signal_group("KILL");
        let _ = tokio::time::timeout(Duration::from_secs(2), p.child.wait()).await;
        p.pid = None;
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
