//! The `cafe24-oauth` binary as users run it: exit codes, migrations, logs, shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cafe24_core::settings::DatabaseKind;
use cafe24_testkit::{fresh_postgres, fresh_sqlite, sqlite_path};

const BIN: &str = env!("CARGO_BIN_EXE_cafe24-oauth");
const CLIENT_SECRET: &str = "cli-test-client-secret-7c1f";
const STATE_SECRET: &str = "cli-test-state-secret-0123456789abcdef";

/// The binary with a clean environment (no stray CAFE24_/PG* variables from the caller).
fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

fn app_env(cmd: &mut Command) -> &mut Command {
    cmd.env("CAFE24_CLIENT_ID", "cli-client")
        .env("CAFE24_CLIENT_SECRET", CLIENT_SECRET)
        .env(
            "CAFE24_REDIRECT_URI",
            "https://app.example.com/oauth/callback",
        )
        .env("CAFE24_SCOPES", "mall.read_product")
        .env("EXPECTED_STATE_SECRET", STATE_SECRET)
        .env("CAFE24_LAUNCH_HMAC_REQUIRED", "false")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "TOKEN_ENCRYPTION_KEYS",
            cafe24_core::settings::generate_key_entry("k1"),
        )
}

#[test]
fn a_missing_or_malformed_setting_exits_2_with_one_line_naming_it() {
    let out = command().arg("serve").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("CAFE24_CLIENT_ID"), "{stderr}");

    for (name, value) in [
        ("CAFE24_BASE_URL", "http://{mall_id}.cafe24api.com"),
        ("DATABASE_URL", "mysql://nope"),
        ("TOKEN_ENCRYPTION_KEYS", "k1:short"),
        ("LOG_FORMAT", "xml"),
    ] {
        let out = app_env(&mut command())
            .env(name, value)
            .arg("serve")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: {name}")), "{stderr}");
        assert!(!stderr.contains(CLIENT_SECRET));
    }
    let usage = command().arg("serve").arg("--bogus").output().expect("run");
    assert_eq!(usage.status.code(), Some(2));
}

fn migrate(db_env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = command();
    for (k, v) in db_env {
        cmd.env(k, v);
    }
    let out = cmd.arg("migrate").output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[tokio::test]
async fn migrate_is_idempotent_on_postgres_and_sqlite() {
    let pg = fresh_postgres().await;
    let DatabaseKind::PostgresUrl(url) = &pg.kind else {
        panic!("expected a URL")
    };
    let pg_env = [("DATABASE_URL", url.expose_secret().to_owned())];
    assert_eq!(
        migrate(&pg_env),
        (
            Some(0),
            "postgres schema at version 5 (5 applied now)".into()
        )
    );
    assert_eq!(
        migrate(&pg_env),
        (
            Some(0),
            "postgres schema at version 5 (0 applied now)".into()
        )
    );

    let path = sqlite_path(&fresh_sqlite()).expect("sqlite path");
    let sqlite_env = [("CAFE24_SQLITE_PATH", path.display().to_string())];
    assert_eq!(
        migrate(&sqlite_env),
        (Some(0), "sqlite schema at version 4 (4 applied now)".into())
    );
    assert_eq!(
        migrate(&sqlite_env),
        (Some(0), "sqlite schema at version 4 (0 applied now)".into())
    );
}

#[test]
fn migrate_against_an_unreachable_database_exits_1() {
    let db = cafe24_testkit::unreachable_postgres();
    let DatabaseKind::PostgresUrl(url) = &db.kind else {
        panic!("expected a URL")
    };
    let (code, _) = migrate(&[
        ("DATABASE_URL", url.expose_secret().to_owned()),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1".into()),
    ]);
    assert_eq!(code, Some(1));
}

#[test]
fn keygen_prints_a_usable_key() {
    let out = command()
        .args(["keygen", "--id", "k1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let keys = cafe24_core::settings::EncryptionKeys::parse(&line).expect("parses");
    assert_eq!(keys.current().id(), "k1");
}

/// `sandbox … --config FILE` reads the sandbox's JSON (or TOML) file, not the runtime's settings.
#[test]
fn the_sandbox_reads_its_own_json_config_file() {
    let dir = std::env::temp_dir().join(format!("cafe24-cli-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("sandbox.json");
    std::fs::write(
        &file,
        r#"{"apps": [{"app_url": "https://app.example.test/launch"}]}"#,
    )
    .expect("write");
    let out = command()
        .args(["sandbox", "launch-url", "jsonmall", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let url = String::from_utf8_lossy(&out.stdout);
    assert!(
        url.starts_with("https://app.example.test/launch?") && url.contains("mall_id=jsonmall"),
        "{url}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

struct Server {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    addr: String,
}

fn start_server(log_format: &str) -> Server {
    let path = sqlite_path(&fresh_sqlite()).expect("sqlite path");
    let mut child = app_env(&mut command())
        .env("CAFE24_SQLITE_PATH", &path)
        .env("LOG_FORMAT", log_format)
        // Everything, from every crate: nothing at any level may carry a secret.
        .env("RUST_LOG", "trace")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let found = logs
            .lock()
            .expect("lock")
            .iter()
            .find(|l| l.contains("listening"))
            .cloned();
        if let Some(line) = found {
            let start = line
                .find("127.0.0.1:")
                .expect("address in the listening line");
            break line[start..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "server did not start: {:?}",
            logs.lock().expect("lock")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Server { child, logs, addr }
}

fn stop(mut server: Server) -> (Option<i32>, String) {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = server.child.wait().expect("wait");
    std::thread::sleep(Duration::from_millis(100));
    let logs = server.logs.lock().expect("lock").join("\n");
    (status.code(), logs)
}

#[tokio::test]
async fn logs_of_a_full_callback_never_contain_the_code_or_secrets_and_sigterm_stops_cleanly() {
    for format in ["human", "json"] {
        let server = start_server(format);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let base = format!("http://{}", server.addr);
        // Opened from Cafe24: the launch query signed with the client secret.
        let launch = cafe24_core::launch::sign_query(
            &format!("mall_id=shop1&timestamp={}", chrono::Utc::now().timestamp()),
            &cafe24_core::secret::ClientSecret::new(CLIENT_SECRET),
        );
        let install = client
            .get(format!("{base}/install?{launch}"))
            .send()
            .await
            .expect("install");
        assert_eq!(install.status(), 302);
        let location =
            url::Url::parse(install.headers()["location"].to_str().expect("ascii")).expect("url");
        let state = location
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("state");
        let code = format!("LEAKCHECK{format}CODE42");
        let query = |c: &str, s: &str| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("code", c)
                .append_pair("state", s)
                .finish()
        };
        let saved = client
            .get(format!("{base}/oauth/callback?{}", query(&code, &state)))
            .send()
            .await
            .expect("cb");
        assert_eq!(saved.status(), 200);
        let replay = client
            .get(format!("{base}/oauth/callback?{}", query(&code, &state)))
            .send()
            .await
            .expect("cb");
        assert_eq!(replay.status(), 409);
        let forged = client
            .get(format!("{base}/oauth/callback?{}", query(&code, "forged")))
            .send()
            .await
            .expect("cb");
        assert_eq!(forged.status(), 400);

        let (exit, logs) = stop(server);
        assert_eq!(exit, Some(0), "graceful shutdown exits 0; logs:\n{logs}");
        assert!(
            logs.contains("authorization code stored"),
            "the callback was logged:\n{logs}"
        );
        assert!(logs.contains("stopped"), "shutdown was logged");
        for secret in [code.as_str(), CLIENT_SECRET, STATE_SECRET, state.as_str()] {
            assert!(
                !logs.contains(secret),
                "{format} logs contain a secret ({} chars)",
                secret.len()
            );
        }
        // The state's MAC alone must not appear either.
        let mac = state.rsplit('.').next().expect("mac");
        assert!(!logs.contains(mac));
    }
}
