//! `cafe24-oauth sandbox`: serve the sandbox, print a launch URL, or fire a webhook on a
//! running sandbox. The binary wires [`SandboxArgs`] in and calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::config::{MallConfig, SandboxConfig};
use crate::launch::{launch_url, LaunchParams};
use crate::secret::Secret;
use crate::state::Shared;

/// Run a local Cafe24 (OAuth, Admin API, rate limits, launch, webhooks, faults).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl SandboxArgs {
    /// The sandbox's config file given where the binary's own flag of the same name took it
    /// (`cafe24-oauth sandbox --config sandbox.json`): used unless one was given here too.
    pub fn use_config_file(&mut self, file: PathBuf) {
        let config = match &mut self.command {
            None => &mut self.serve.config,
            Some(SandboxCommand::Serve(serve)) => &mut serve.config,
            Some(SandboxCommand::LaunchUrl(launch)) => &mut launch.config,
            Some(SandboxCommand::FireWebhook(_)) => return,
        };
        config.config.get_or_insert(file);
    }
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the sandbox (the default).
    Serve(ServeArgs),
    /// Print an App URL launch link with a correct `hmac` for a mall.
    LaunchUrl(LaunchUrlArgs),
    /// Ask a running sandbox to send a webhook event.
    FireWebhook(FireWebhookArgs),
}

/// Settings of a served sandbox: a config file, then quick overrides.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:9024")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// A config file (TOML or JSON) and quick overrides of the first app and the malls.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// Config file (`.toml`, or JSON otherwise).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Mall ids to create (replaces the configured malls); repeatable.
    #[arg(long = "mall")]
    pub malls: Vec<String>,
    /// Seeded products per mall given with --mall, and for auto-created malls.
    #[arg(long)]
    pub products: Option<u32>,
    /// Client id of the first app.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Client secret of the first app.
    #[arg(long)]
    pub client_secret: Option<String>,
    /// Registered redirect URIs of the first app (replaces them); repeatable.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// App URL of the first app (where launch links point).
    #[arg(long)]
    pub app_url: Option<String>,
    /// Webhook URL of the first app.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Skip the consent page.
    #[arg(long)]
    pub auto_approve: bool,
    /// Create unknown malls on first use.
    #[arg(long)]
    pub auto_create_malls: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LaunchUrlArgs {
    /// The mall the app is opened from.
    pub mall_id: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[arg(long)]
    pub shop_no: Option<u32>,
    #[arg(long)]
    pub user_id: Option<String>,
    #[arg(long)]
    pub user_name: Option<String>,
    /// `P` representative operator, `S` sub-operator.
    #[arg(long)]
    pub user_type: Option<String>,
    /// Timestamp in the configured unit (default: now).
    #[arg(long)]
    pub timestamp: Option<i64>,
}

#[derive(Debug, Clone, Args)]
pub struct FireWebhookArgs {
    /// The mall the event happened in.
    pub mall_id: String,
    /// Event number (90001 product created, 90002 edited, 90003 deleted, 90077 app deleted, …).
    pub event_no: u32,
    /// Base URL of the running sandbox.
    #[arg(long, default_value = "http://127.0.0.1:9024")]
    pub sandbox: String,
    /// Extra `resource` fields as a JSON object, e.g. '{"product_no":12}'.
    #[arg(long)]
    pub resource: Option<String>,
    /// Only deliver to this app.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Log the delivery as sent but never send it.
    #[arg(long)]
    pub lose: bool,
}

impl ConfigArgs {
    /// The config file (or defaults) with the overrides applied.
    pub fn load(&self) -> anyhow::Result<SandboxConfig> {
        let mut cfg = match &self.config {
            Some(path) => SandboxConfig::from_file(path)?,
            None => SandboxConfig::default(),
        };
        if !self.malls.is_empty() {
            cfg.malls = self
                .malls
                .iter()
                .map(|id| MallConfig {
                    mall_id: id.clone(),
                    products: self.products.unwrap_or(MallConfig::default().products),
                    ..MallConfig::default()
                })
                .collect();
        } else if let Some(n) = self.products {
            cfg.malls.iter_mut().for_each(|m| m.products = n);
        }
        if let Some(n) = self.products {
            cfg.auto_create_products = n;
        }
        cfg.auto_approve |= self.auto_approve;
        cfg.auto_create_malls |= self.auto_create_malls;
        if cfg.apps.is_empty() {
            cfg.apps.push(Default::default());
        }
        if let Some(app) = cfg.apps.first_mut() {
            if let Some(id) = &self.client_id {
                app.client_id = id.clone();
            }
            if let Some(secret) = &self.client_secret {
                app.client_secret = Secret::new(secret.clone());
            }
            if !self.redirect_uris.is_empty() {
                app.redirect_uris = self.redirect_uris.clone();
            }
            if let Some(url) = &self.app_url {
                app.app_url = url.clone();
            }
            if self.webhook_url.is_some() {
                app.webhook_url = self.webhook_url.clone();
            }
        }
        Ok(cfg)
    }
}

/// Runs the chosen subcommand (serve by default).
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    match args.command {
        None => serve(args.serve).await,
        Some(SandboxCommand::Serve(s)) => serve(s).await,
        Some(SandboxCommand::LaunchUrl(l)) => print_launch_url(l),
        Some(SandboxCommand::FireWebhook(f)) => fire_webhook(f).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    let sandbox = crate::start(cfg, args.listen).await?;
    let cfg = sandbox.config();
    println!("Cafe24 sandbox listening on http://{}", sandbox.addr());
    println!("CAFE24_BASE_URL={}", sandbox.base_url_template());
    // The sandbox's own test credentials, printed so they can be copied into the runtime.
    for app in &cfg.apps {
        println!("# app {:?}", app.name);
        println!("CAFE24_CLIENT_ID={}", app.client_id);
        println!("CAFE24_CLIENT_SECRET={}", app.client_secret.expose_secret());
        if let Some(uri) = app.redirect_uris.first() {
            println!("CAFE24_REDIRECT_URI={uri}");
        }
        println!("CAFE24_SCOPES={}", app.scopes.join(","));
    }
    let malls: Vec<String> = sandbox
        .state()
        .malls()
        .iter()
        .map(|m| m.id.clone())
        .collect();
    println!("# malls: {}", malls.join(", "));
    println!("# control API: {}", sandbox.url("/_sandbox/stats"));
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}

fn print_launch_url(args: LaunchUrlArgs) -> anyhow::Result<()> {
    let mut cfg = args.config.load()?;
    cfg.auto_create_malls = true;
    let state = Shared::new(cfg)?;
    let params = LaunchParams {
        mall_id: args.mall_id,
        client_id: args.config.client_id.clone(),
        shop_no: args.shop_no,
        user_id: args.user_id,
        user_name: args.user_name,
        user_type: args.user_type,
        timestamp: args.timestamp,
        ..LaunchParams::default()
    };
    let url = launch_url(&state, &params).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{url}");
    Ok(())
}

async fn fire_webhook(args: FireWebhookArgs) -> anyhow::Result<()> {
    let resource: Value = match &args.resource {
        Some(text) => serde_json::from_str(text).map_err(|e| anyhow::anyhow!("--resource: {e}"))?,
        None => json!({}),
    };
    let body = json!({
        "mall_id": args.mall_id,
        "event_no": args.event_no,
        "resource": resource,
        "client_id": args.client_id,
        "lose": args.lose,
        "wait": true,
    });
    let url = format!(
        "{}/_sandbox/webhooks/fire",
        args.sandbox.trim_end_matches('/')
    );
    let resp = reqwest::Client::new().post(&url).json(&body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        anyhow::bail!("sandbox answered {status}: {text}");
    }
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Wrapper::command().debug_assert();
    }

    #[test]
    fn serve_flags_override_the_config() {
        let w = Wrapper::try_parse_from([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--mall",
            "a",
            "--mall",
            "b",
            "--products",
            "7",
            "--client-id",
            "id",
            "--client-secret",
            "sec",
            "--redirect-uri",
            "http://x/cb",
            "--auto-approve",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(w.args.command.is_none());
        let cfg = w.args.serve.config.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.malls.len(), 2);
        assert_eq!(cfg.malls[1].products, 7);
        assert_eq!(cfg.apps[0].client_id, "id");
        assert_eq!(cfg.apps[0].client_secret.expose_secret(), "sec");
        assert_eq!(cfg.apps[0].redirect_uris, vec!["http://x/cb".to_string()]);
        assert!(cfg.auto_approve);
    }

    #[test]
    fn subcommands_parse() {
        let w = Wrapper::try_parse_from(["sandbox", "launch-url", "shop", "--user-id", "u"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(w.args.command, Some(SandboxCommand::LaunchUrl(ref l)) if l.mall_id == "shop")
        );
        let w = Wrapper::try_parse_from(["sandbox", "fire-webhook", "shop", "90001", "--lose"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(w.args.command, Some(SandboxCommand::FireWebhook(ref f)) if f.event_no == 90001 && f.lose)
        );
    }
}
