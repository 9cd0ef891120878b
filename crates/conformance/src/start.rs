//! Bringing the target up: the sandbox's registration of the kit's app, the optional setup
//! command, the servers and background processes, and the wait until they are ready.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cafe24_sandbox::{AppConfig, SandboxConfig, Secret, WebhookAuth, WebhookAuthScheme};

use crate::args::{CommandLine, ConformanceArgs};
use crate::env::{Secrets, WEBHOOK_HEADER};
use crate::error::KitError;
use crate::fleet::{free_port, Fleet, Process, Spec};

/// What to start, and with which environment for a given port.
pub struct Plan<'a> {
    pub args: &'a ConformanceArgs,
    pub command: &'a CommandLine,
    /// One per server; the first one's callback is the redirect URI.
    pub ports: &'a [u16],
    pub env: &'a dyn Fn(u16) -> Vec<(String, String)>,
    pub logs: &'a Path,
    pub startup: Duration,
}

/// Runs the setup command to completion, starts the servers and the workers into `fleet`,
/// waits for every server's `/healthz`, and checks the workers are still running.
pub async fn start(
    plan: &Plan<'_>,
    http: &reqwest::Client,
    fleet: &mut Fleet,
    setup_logs: &mut Vec<PathBuf>,
) -> Result<(), KitError> {
    let spec = |name: String, command: &CommandLine, port: u16, serves_http| Spec {
        name,
        command: command.clone(),
        env: (plan.env)(port),
        port,
        serves_http,
    };
    let port = || free_port().map_err(KitError::io("finding a free port for", plan.logs));
    if let Some(setup) = &plan.args.setup {
        let mut process = Process::spawn(spec("setup".into(), setup, port()?, false), plan.logs)?;
        let done = process.wait_success(plan.startup).await;
        *setup_logs = vec![process.stdout.clone(), process.stderr.clone()];
        done?;
    }
    for (i, port) in plan.ports.iter().enumerate() {
        let name = format!("server-{}", i + 1);
        fleet.processes.push(Process::spawn(
            spec(name, plan.command, *port, true),
            plan.logs,
        )?);
    }
    if let Some(worker) = &plan.args.worker {
        for i in 0..plan.args.workers {
            let name = format!("worker-{}", i + 1);
            fleet.processes.push(Process::spawn(
                spec(name, worker, port()?, false),
                plan.logs,
            )?);
        }
    }
    for process in fleet.processes.iter_mut().filter(|p| p.serves_http) {
        process.wait_healthy(http, plan.startup).await?;
    }
    // Background processes have no health endpoint: they must at least still be running.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for process in fleet.processes.iter_mut() {
        if let Some(status) = process.exited() {
            return Err(process.exited_error(status));
        }
    }
    Ok(())
}

/// The kit's app at the sandbox: its secrets, server-1's callback, App URL and webhook URL.
pub fn sandbox_config(secrets: &Secrets, first: &str) -> SandboxConfig {
    let app = AppConfig {
        client_id: secrets.client_id.clone(),
        client_secret: Secret::new(secrets.client_secret.clone()),
        name: "cafe24-oauth conformance".into(),
        redirect_uris: vec![format!("{first}/oauth/callback")],
        app_url: format!("{first}/install"),
        webhook_url: Some(format!("{first}/webhooks/cafe24")),
        webhook_auth: WebhookAuth {
            header: WEBHOOK_HEADER.into(),
            key: Secret::new(secrets.webhook_key.clone()),
            scheme: WebhookAuthScheme::ApiKey,
        },
        ..AppConfig::default()
    };
    SandboxConfig {
        apps: vec![app],
        malls: Vec::new(),
        auto_create_malls: true,
        auto_approve: true,
        ..SandboxConfig::default()
    }
}

/// One line saying what runs.
pub fn describe(command: &CommandLine, args: &ConformanceArgs) -> String {
    let line = |c: &CommandLine| format!("`{} {}`", c.program, c.args.join(" "));
    let mut text = match &args.setup {
        Some(setup) => format!("{} then ", line(setup)),
        None => String::new(),
    };
    text.push_str(&format!("{} × {}", args.processes, line(command)));
    if let Some(worker) = &args.worker {
        text.push_str(&format!(" + {} × {}", args.workers, line(worker)));
    }
    text
}
