//! The kit checked against targets that are wrong on purpose: one that answers /healthz and
//! nothing else correctly must fail (every failure listed, in the table, JSON and JUnit), and
//! one that dies at start-up must be reported with its stderr.

use std::time::Duration;

use cafe24_conformance::{ConformanceArgs, KitError};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: ConformanceArgs,
}

fn args(words: &[&str]) -> ConformanceArgs {
    Cli::try_parse_from(std::iter::once("conformance").chain(words.iter().copied()))
        .expect("valid arguments")
        .args
}

/// The broken target: this test binary again, running only `fake_target`.
fn fake_target_command() -> Vec<String> {
    let exe = std::env::current_exe().expect("test binary");
    vec![
        exe.display().to_string(),
        "fake_target".into(),
        "--exact".into(),
        "--ignored".into(),
        "--nocapture".into(),
    ]
}

/// Answers `GET /healthz` with 200 and everything else with `200 {}` — alive, and wrong.
#[tokio::test]
#[ignore = "the deliberately broken target, started by the kit"]
async fn fake_target() {
    let port: u16 = std::env::var("PORT").expect("PORT").parse().expect("port");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut read = 0;
            while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                match socket.read(&mut buf[read..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => read += n,
                }
            }
            let body = if buf.starts_with(b"GET /healthz ") {
                "ok"
            } else {
                "{}"
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_only_answers_healthz_fails_with_every_failure_listed() {
    let dir = std::env::temp_dir().join(format!("kit-test-{:08x}", rand_u32()));
    std::fs::create_dir_all(&dir).expect("dir");
    let junit = dir.join("junit.xml");
    let junit_arg = junit.display().to_string();
    let logs = dir.join("logs").display().to_string();
    let mut words = vec![
        "--processes",
        "2",
        "--json",
        "--junit",
        &junit_arg,
        "--logs",
        &logs,
        "--",
    ];
    let target = fake_target_command();
    words.extend(target.iter().map(String::as_str));
    let report = tokio::time::timeout(
        Duration::from_secs(240),
        cafe24_conformance::run(args(&words)),
    )
    .await
    .expect("the kit finishes in bounded time")
    .expect("the kit runs");
    let failed: Vec<_> = report.results.iter().filter(|r| !r.passed()).collect();
    assert!(
        failed.len() >= report.results.len() - 2,
        "almost every case fails against a target that does nothing: {}",
        report.table()
    );
    for name in [
        "install.valid_launch_redirects_to_authorize",
        "state.forged_states_are_400_and_store_nothing",
        "callback.success_is_the_contract_json",
        "exchange.code_is_exchanged_within_one_second",
        "tokens.stored_encrypted_with_the_key_ring",
        "proxy.requires_the_admin_credential",
        "webhooks.unverified_delivery_is_403",
        "webhooks.unconfigured_receiver_refuses_everything",
    ] {
        let result = report.results.iter().find(|r| r.name == name).expect(name);
        let message = result.outcome.as_ref().expect_err(name);
        assert!(!message.is_empty(), "{name} says why");
    }
    let table = report.table();
    assert!(
        table.contains("FAIL") && table.contains("[contract: "),
        "{table}"
    );
    assert!(table.ends_with(&format!(
        "{} passed, {} failed\n",
        report.passed(),
        report.failed()
    )));
    assert_eq!(report.json()["failed"], report.failed());
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert_eq!(xml.matches("<failure ").count(), report.failed());
    assert!(
        std::fs::read_dir(dir.join("logs"))
            .expect("logs kept")
            .count()
            >= 4,
        "stdout and stderr of both processes are kept"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_dies_at_start_up_is_reported_with_its_stderr() {
    // A database URL is taken as given and not touched before the target is up.
    let logs = scratch("dies");
    let words = [
        "--logs",
        &logs,
        "--database-url",
        "postgres://nobody@127.0.0.1:1/none",
        "--startup-timeout",
        "10",
        "--",
        "sh",
        "-c",
        "echo 'CAFE24_CLIENT_ID: not set' >&2; exit 2",
    ];
    let err = cafe24_conformance::run(args(&words))
        .await
        .expect_err("cannot start");
    assert!(matches!(err, KitError::Exited { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("server-1") && message.contains("CAFE24_CLIENT_ID: not set"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_healthz_is_reported_in_bounded_time() {
    let logs = scratch("silent");
    let words = [
        "--logs",
        &logs,
        "--database-url",
        "postgres://nobody@127.0.0.1:1/none",
        "--startup-timeout",
        "2",
        "--",
        "sh",
        "-c",
        "echo starting >&2; sleep 60",
    ];
    let started = std::time::Instant::now();
    let err = cafe24_conformance::run(args(&words))
        .await
        .expect_err("never healthy");
    assert!(matches!(err, KitError::NotHealthy { .. }), "{err}");
    assert!(err.to_string().contains("starting"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped within the bound and the grace"
    );
    let _ = std::fs::remove_dir_all(&logs);
}

/// A fresh directory for a test's logs (the kit keeps them when the target fails).
fn scratch(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("kit-test-{name}-{:08x}", rand_u32()))
        .display()
        .to_string()
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id()
}

#[test]
fn every_case_has_a_row_in_the_documentation() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/conformance.md"
    ))
    .expect("docs/conformance.md");
    let cases = cafe24_conformance::cases::all();
    assert!(
        doc.contains(&format!("runs {} cases", cases.len())),
        "the introduction counts the cases"
    );
    for case in cases {
        assert!(
            doc.lines()
                .any(|l| l.starts_with(&format!("| `{}` |", case.name))),
            "{} has no row in docs/conformance.md",
            case.name
        );
    }
}
