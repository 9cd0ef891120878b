//! One run: a database, a sandbox, the target's processes, the cases, the report — and
//! everything the kit started stopped again, on success, failure, error or Ctrl-C.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cafe24_sandbox::RunningSandbox;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::args::{CommandLine, ConformanceArgs};
use crate::cases::{self, Case, CaseResult};
use crate::db;
use crate::env::{self, Endpoints, Secrets};
use crate::error::KitError;
use crate::fleet::{free_port, Fleet, Process};
use crate::postgres::Database;
use crate::report::Report;
use crate::start::{self, describe, sandbox_config, Plan};
use crate::world::{Launcher, World};

/// What exists so far, so that teardown stops exactly that.
#[derive(Default)]
struct Held {
    database: Option<Database>,
    sandbox: Option<RunningSandbox>,
    pool: Option<PgPool>,
    fleet: Fleet,
    /// Output of the --setup command, searched for secrets with the rest.
    setup_logs: Vec<std::path::PathBuf>,
}

impl Held {
    async fn release(&mut self) {
        self.fleet.stop().await;
        if let Some(pool) = self.pool.take() {
            pool.close().await;
        }
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.shutdown().await;
        }
        if let Some(database) = self.database.take() {
            database.release().await;
        }
    }
}

/// The cases `--filter` selects (all without a filter).
pub fn selected(filters: &[String]) -> Vec<Case> {
    cases::all()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect()
}

/// What clap cannot see: a `--filter` that selects no case.
pub fn usage_problem(args: &ConformanceArgs) -> Option<String> {
    (!args.filter.is_empty() && selected(&args.filter).is_empty()).then(|| {
        format!(
            "no case matches --filter {}; `--list` shows the cases",
            args.filter.join(" --filter ")
        )
    })
}

/// Runs the kit as the command line asks; prints the table (or JSON) and writes JUnit.
pub async fn run(args: ConformanceArgs) -> Result<Report, KitError> {
    if args.list {
        for case in selected(&args.filter) {
            println!("{:<58} {}", case.name, case.section);
        }
        return Ok(Report::default());
    }
    let command = CommandLine::from_words(&args.command).ok_or(KitError::NoCommand)?;
    let (logs, temporary) = match &args.logs {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("cafe24-conformance-{}", env::random_hex(4))),
            true,
        ),
    };
    std::fs::create_dir_all(&logs).map_err(KitError::io("creating", &logs))?;
    let started = Instant::now();
    let mut held = Held::default();
    let executed = tokio::select! {
        r = execute(&args, &command, &logs, &mut held) => r,
        () = interrupted() => Err(KitError::Interrupted),
    };
    if matches!(executed, Err(KitError::Interrupted)) {
        eprintln!("conformance: interrupted; stopping everything the kit started");
    }
    held.release().await;
    let report = Report {
        results: executed?,
        duration: started.elapsed(),
    };
    if args.json {
        eprint!("{}", report.table());
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    let _ = std::io::stdout().flush();
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit()).map_err(KitError::io("writing", path))?;
    }
    if report.failed() == 0 && temporary {
        let _ = std::fs::remove_dir_all(&logs);
    } else {
        eprintln!("conformance: the target's output is in {}", logs.display());
    }
    Ok(report)
}

async fn execute(
    args: &ConformanceArgs,
    command: &CommandLine,
    logs: &std::path::Path,
    held: &mut Held,
) -> Result<Vec<CaseResult>, KitError> {
    let database = held.database.insert(
        Database::provision(args.database_url.as_deref(), args.admin_url.as_deref()).await?,
    );
    let ports = (0..args.processes)
        .map(|_| free_port())
        .collect::<Result<Vec<_>, _>>()
        .map_err(KitError::io("finding free ports in", logs))?;
    let first = format!("http://127.0.0.1:{}", ports[0]);
    let redirect_uri = format!("{first}/oauth/callback");
    let secrets = Secrets::generate();
    let sandbox =
        cafe24_sandbox::start(sandbox_config(&secrets, &first), ([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| KitError::Sandbox(e.to_string()))?;
    let sandbox = &*held.sandbox.insert(sandbox);
    let endpoints = Endpoints {
        base_url_template: sandbox.base_url_template(),
        database_url: database.url.clone(),
        redirect_uri: redirect_uri.clone(),
    };
    let common = env::common(&secrets, &endpoints);
    let with = |port: u16| {
        let mut all = common.clone();
        all.extend(env::webhooks(&secrets));
        all.extend(env::listen(port));
        all.extend(args.env.iter().cloned());
        all
    };
    let startup = Duration::from_secs(args.startup_timeout);
    eprintln!(
        "conformance: {} on {}; sandbox at {}",
        describe(command, args),
        database.origin,
        sandbox.url("")
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()?;
    let plan = Plan {
        args,
        command,
        ports: &ports,
        env: &with,
        logs,
        startup,
    };
    start::start(&plan, &http, &mut held.fleet, &mut held.setup_logs).await?;
    // Every query of the kit is bounded too: a target holding a lock cannot hang a case.
    let options = database
        .url
        .parse::<PgConnectOptions>()
        .map_err(KitError::database("reading the database URL"))?
        .options([("statement_timeout", "20s")]);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(KitError::database("connecting to the target's database"))?;
    let pool = &*held.pool.insert(pool);
    wait_for_schema(pool, Duration::from_secs(5)).await;

    let mut unconfigured = common.clone();
    unconfigured.extend(
        args.env
            .iter()
            .filter(|(k, _)| !k.starts_with("CAFE24_WEBHOOK_"))
            .cloned(),
    );
    let world = World {
        sandbox,
        db: pool,
        secrets: &secrets,
        http,
        servers: held.fleet.servers().map(Process::base_url).collect(),
        redirect_uri,
        run_id: env::random_hex(3),
        seen: Mutex::default(),
        launcher: Launcher {
            command: command.clone(),
            env: unconfigured,
            logs: logs.to_path_buf(),
            startup,
        },
        extra_logs: Mutex::default(),
        fleet_logs: held
            .fleet
            .log_files()
            .into_iter()
            .chain(held.setup_logs.iter().cloned())
            .collect(),
    };
    let cases = selected(&args.filter);
    let mut results = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let result = cases::run_one(&world, case).await;
        eprintln!(
            "[{:>2}/{}] {} {} ({} ms)",
            i + 1,
            cases.len(),
            if result.passed() { "pass" } else { "FAIL" },
            result.name,
            result.duration.as_millis()
        );
        results.push(result);
    }
    Ok(results)
}

/// The target creates the contract's schema at start-up; a short wait, then the cases say
/// what is missing.
async fn wait_for_schema(pool: &PgPool, within: Duration) {
    let deadline = Instant::now() + within;
    while !db::schema_ready(pool).await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
