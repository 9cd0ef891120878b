//! The command line of `cafe24-oauth conformance`, as clap types the binary embeds.

use std::path::PathBuf;

use clap::Args;

/// Check an implementation of the cafe24-oauth contract, black-box: a local Cafe24 (the
/// sandbox) and a throwaway PostgreSQL, COMMAND started with the contract's environment,
/// then every case over real HTTP. Exit code 0 when every case passed, 1 otherwise.
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ConformanceArgs {
    /// Copies of COMMAND to start, each on its own port, all sharing one database.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub processes: u16,

    /// A background command started beside COMMAND with the same environment (e.g. a worker
    /// when COMMAND serves HTTP only). One command line, split on whitespace; no shell.
    #[arg(long, value_name = "COMMAND LINE", value_parser = parse_command_line)]
    pub worker: Option<CommandLine>,

    /// Copies of the --worker command to start.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "worker", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub workers: u16,

    /// A command run once to completion before COMMAND starts, with the same environment
    /// (e.g. applying the migrations: 'cafe24-oauth migrate'). Split on whitespace; no shell.
    #[arg(long, value_name = "COMMAND LINE", value_parser = parse_command_line)]
    pub setup: Option<CommandLine>,

    /// Use this database as it is (the kit creates nothing and drops nothing).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// A superuser URL of a PostgreSQL cluster: the kit creates a fresh database in it and drops
    /// it at the end. Without this or --database-url, the kit runs a throwaway cluster itself.
    #[arg(
        long,
        env = "CAFE24_TEST_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub admin_url: Option<String>,

    /// Adds or overrides a variable of COMMAND's environment (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Runs only the cases whose name contains one of these (repeatable).
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Vec<String>,

    /// Prints the result as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Also writes the result as a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Where COMMAND's stdout and stderr are written (default: a temporary directory, kept
    /// when a case fails).
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,

    /// How long each process may take to answer GET /healthz.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub startup_timeout: u64,

    /// Lists the cases (name and contract section) and exits.
    #[arg(long)]
    pub list: bool,

    /// The implementation: a program and its arguments, after `--`. `{port}` in an argument
    /// becomes the process's port (also in $PORT and LISTEN_ADDR).
    #[arg(last = true, value_name = "COMMAND", required_unless_present = "list")]
    pub command: Vec<String>,
}

const AFTER_HELP: &str = "\
Examples:
  cafe24-oauth conformance -- cafe24-oauth serve
  cafe24-oauth conformance --processes 3 -- cafe24-oauth serve
  cafe24-oauth conformance --processes 2 --worker 'cafe24-oauth worker' -- cafe24-oauth serve --no-worker
  cafe24-oauth conformance --processes 2 -- uvicorn app.main:app --port {port}

The kit sets CAFE24_CLIENT_ID, CAFE24_CLIENT_SECRET, CAFE24_REDIRECT_URI, CAFE24_SCOPES,
CAFE24_BASE_URL, EXPECTED_STATE_SECRET, TOKEN_ENCRYPTION_KEYS, DATABASE_URL, LISTEN_ADDR, PORT,
CAFE24_ADMIN_TOKEN, the webhook settings and short timings; see docs/conformance.md.";

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: String,
    pub args: Vec<String>,
}

impl CommandLine {
    /// From COMMAND's words (the first is the program).
    pub fn from_words(words: &[String]) -> Option<Self> {
        let (program, args) = words.split_first()?;
        Some(Self {
            program: program.clone(),
            args: args.to_vec(),
        })
    }
}

fn parse_command_line(raw: &str) -> Result<CommandLine, String> {
    let words: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
    CommandLine::from_words(&words).ok_or_else(|| "must name a program".to_owned())
}

fn parse_env(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw.split_once('=').ok_or("must be KEY=VALUE")?;
    let valid = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!("{key:?} is not a variable name"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConformanceArgs,
    }

    fn parse(words: &[&str]) -> Result<ConformanceArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("kit").chain(words.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn the_command_follows_the_double_dash() {
        let args =
            parse(&["--processes", "3", "--", "app", "serve", "--port", "{port}"]).expect("parses");
        assert_eq!(args.processes, 3);
        assert_eq!(args.command, ["app", "serve", "--port", "{port}"]);
    }

    #[test]
    fn usage_errors_exit_with_code_2() {
        for bad in [
            &[][..],
            &["--processes", "0", "--", "app"],
            &["--env", "NOEQUALS", "--", "app"],
            &["--env", "1X=v", "--", "app"],
            &["--workers", "2", "--", "app"],
            &["--bogus", "--", "app"],
        ] {
            let err = parse(bad).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_worker_command_line_is_split_on_whitespace() {
        let args = parse(&["--worker", "bin/app  worker --fast", "--", "app"]).expect("parses");
        assert_eq!(
            args.worker,
            Some(CommandLine {
                program: "bin/app".into(),
                args: vec!["worker".into(), "--fast".into()]
            })
        );
    }
}
