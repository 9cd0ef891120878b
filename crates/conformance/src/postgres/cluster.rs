//! A throwaway PostgreSQL cluster, as `scripts/pg.sh` starts one: `initdb` and `pg_ctl` from
//! `/usr/lib/postgresql/*/bin` (newest first) or PATH, on a free loopback port, its socket and
//! data in a temporary directory that is removed at the end. initdb refuses to run as root, so
//! as root the cluster runs as the unprivileged `postgres` user (created if missing).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::error::KitError;

/// Longest wait for one of initdb, pg_ctl start and pg_ctl stop.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    running: bool,
}

impl Cluster {
    pub async fn start() -> Result<Self, KitError> {
        let bin = bin_dir().ok_or(KitError::NoPostgres)?;
        let as_postgres = is_root().await;
        let dir = std::env::temp_dir().join(format!(
            "cafe24-conformance-pg-{:08x}",
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(KitError::io("creating", &dir))?;
        let mut cluster = Self {
            dir,
            bin,
            as_postgres,
            port: 0,
            running: false,
        };
        if as_postgres {
            if !run_quiet("id", &["postgres"]).await {
                run_step(
                    "useradd",
                    "useradd",
                    &[
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        "postgres",
                    ],
                )
                .await?;
            }
            let dir = cluster.dir.display().to_string();
            run_step("chown", "chown", &["postgres", &dir]).await?;
        }
        let data = cluster.data().display().to_string();
        cluster
            .pg(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            )
            .await?;
        cluster.port = crate::fleet::free_port()
            .map_err(KitError::io("finding a free port for", &cluster.dir))?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off",
            cluster.port,
            cluster.dir.display()
        );
        let log = cluster.dir.join("server.log").display().to_string();
        cluster.running = true; // from here on, stopping is attempted even if start fails halfway
        cluster
            .pg(
                "pg_ctl",
                &[
                    "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
                ],
            )
            .await
            .map_err(|e| match std::fs::read_to_string(&log) {
                Ok(text) => KitError::Cluster {
                    step: "pg_ctl start",
                    detail: format!("{e}\n{}", tail(&text, 20)),
                },
                Err(_) => e,
            })?;
        Ok(cluster)
    }

    /// A superuser URL of the cluster's `postgres` database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn stop(mut self) {
        if self.running {
            let data = self.data().display().to_string();
            let _ = self
                .pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
                .await;
            self.running = false;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    async fn pg(&self, tool: &'static str, args: &[&str]) -> Result<(), KitError> {
        let program = self.bin.join(tool).display().to_string();
        if self.as_postgres {
            let mut all = vec!["-u", "postgres", "--", program.as_str()];
            all.extend_from_slice(args);
            run_step(tool, "runuser", &all).await
        } else {
            run_step(tool, &program, args).await
        }
    }
}

impl Drop for Cluster {
    /// A backstop for panics and early returns: stop synchronously and remove the directory.
    fn drop(&mut self) {
        if self.running {
            let pg_ctl = self.bin.join("pg_ctl").display().to_string();
            let data = self.data().display().to_string();
            let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
            let mut cmd = if self.as_postgres {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--", &pg_ctl]).args(args);
                c
            } else {
                let mut c = std::process::Command::new(&pg_ctl);
                c.args(args);
                c
            };
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/*/bin` with an initdb, else the directory of PATH's initdb.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    })
}

async fn is_root() -> bool {
    match Command::new("id").arg("-u").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim() == "0",
        Err(_) => false,
    }
}

async fn run_quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn run_step(step: &'static str, program: &str, args: &[&str]) -> Result<(), KitError> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(STEP_TIMEOUT, output)
        .await
        .map_err(|_| KitError::Cluster {
            step,
            detail: format!("no answer within {} s", STEP_TIMEOUT.as_secs()),
        })?
        .map_err(|e| KitError::Cluster {
            step,
            detail: format!("cannot run {program}: {e}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Err(KitError::Cluster {
        step,
        detail: format!(
            "{} exited with {}\n{}",
            program,
            output.status,
            tail(&text, 20)
        ),
    })
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
