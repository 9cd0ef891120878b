//! One module per subcommand.

mod keygen;
mod migrate;
mod serve;

use cafe24_core::settings::{LogFormat, Source};

use crate::args::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let source = || Source::load(cli.config.as_deref());
    match cli.command {
        Command::Serve(args) => serve::run(&source()?, &args).await,
        Command::Migrate => migrate::run(&source()?).await,
        Command::Keygen(args) => keygen::run(&args),
        Command::Sandbox(args) => {
            cafe24_server::telemetry::init(LogFormat::load(&source()?)?);
            cafe24_sandbox::cli::run(*args).await
        }
    }
}
