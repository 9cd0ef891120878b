//! `cafe24-oauth`: parse the command line, run the subcommand, map failures to exit codes
//! (0 ok, 2 usage or configuration error, 1 runtime failure). Logs go to stderr, results to stdout.

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<commands::Exit>().is_some() => {
            ExitCode::from(e.downcast_ref::<commands::Exit>().map_or(1, |x| x.0))
        }
        Err(e) if e.downcast_ref::<cafe24_core::ConfigError>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
