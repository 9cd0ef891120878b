//! One module per subcommand.

mod api;
mod conformance;
mod context;
mod demo;
mod generate;
mod keygen;
mod malls;
mod migrate;
mod serve;
mod tokens;
mod webhooks;

use cafe24_core::settings::{LogFormat, Source};

use crate::args::{Cli, Command, WebhooksCommand};

/// A subcommand that has reported on its own and ends with this exit code.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for Exit {}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let source = || Source::load(cli.config.as_deref());
    match cli.command {
        Command::Demo => demo::run().await,
        Command::Serve(args) => serve::run(&source()?, &args).await,
        Command::Worker => tokens::worker(&source()?).await,
        Command::Exchange(_) => tokens::exchange_once(&source()?).await,
        Command::Refresh(args) => tokens::refresh(&source()?, &args).await,
        Command::Malls(args) => malls::run(&source()?, &args).await,
        Command::Token(arg) => tokens::token(&source()?, &arg.mall_id).await,
        Command::Revoke(arg) => tokens::revoke(&source()?, &arg.mall_id).await,
        Command::Reencrypt => tokens::reencrypt(&source()?).await,
        Command::Webhooks(WebhooksCommand::Reconcile(arg)) => {
            webhooks::reconcile(&source()?, arg.mall_id.as_ref()).await
        }
        Command::Api(args) => api::run(&source()?, &args).await,
        Command::Migrate => migrate::run(&source()?).await,
        Command::Keygen(args) => keygen::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Conformance(args) => conformance::run(*args).await,
        Command::Sandbox(mut args) => {
            // `--config` after `sandbox` names the sandbox's own file (TOML or JSON), which the
            // global flag of the same name may have taken: it goes to the sandbox, and the log
            // format comes from the environment alone.
            if let Some(file) = cli.config.clone() {
                args.use_config_file(file);
            }
            cafe24_server::telemetry::init(LogFormat::load(&Source::load(None)?)?);
            cafe24_sandbox::cli::run(*args).await
        }
    }
}
