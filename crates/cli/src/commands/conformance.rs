//! `conformance`: the kit (crates/conformance) checking COMMAND against the contract.

use anyhow::bail;
use clap::CommandFactory;

pub async fn run(args: cafe24_conformance::ConformanceArgs) -> anyhow::Result<()> {
    if let Some(problem) = cafe24_conformance::usage_problem(&args) {
        // A usage error like clap's own: printed with the usage line, exit code 2.
        let mut cli = crate::args::Cli::command();
        let command = cli
            .find_subcommand_mut("conformance")
            .map(|c| c.clone().bin_name("cafe24-oauth conformance"));
        command
            .unwrap_or(cli)
            .error(clap::error::ErrorKind::InvalidValue, problem)
            .exit();
    }
    let report = cafe24_conformance::run(args).await?;
    if report.failed() > 0 {
        bail!("{} conformance case(s) failed", report.failed());
    }
    Ok(())
}
