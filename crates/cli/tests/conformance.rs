//! `cafe24-oauth conformance` as a user runs it: usage errors exit 2, the runtime passes its
//! cases on several processes (exit 0), and a deliberately misconfigured runtime fails the case
//! that checks it (exit 1, the failure listed).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cafe24-oauth");

fn conformance(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("conformance")
        .args(args)
        .output()
        .expect("run cafe24-oauth")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn usage_errors_exit_with_code_2() {
    for args in [
        &[][..],
        &["--processes", "0", "--", BIN, "serve"],
        &["--env", "NOT_A_PAIR", "--", BIN, "serve"],
        &["--no-such-flag", "--", BIN, "serve"],
        &["--filter", "no-such-case", "--", BIN, "serve"],
    ] {
        let out = conformance(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn the_runtime_passes_its_install_and_state_cases_on_two_processes() {
    let out = conformance(&[
        "--processes",
        "2",
        "--filter",
        "install.",
        "--filter",
        "state.",
        "--",
        BIN,
        "serve",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert_eq!(
        stdout.lines().last(),
        Some("6 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn a_runtime_that_does_not_require_the_launch_hmac_fails_the_case_and_exits_1() {
    // A failed run keeps the target's logs: in a directory this test removes.
    let logs = std::env::temp_dir().join(format!("conformance-cli-test-{}", std::process::id()));
    let logs_arg = logs.display().to_string();
    let out = conformance(&[
        "--logs",
        &logs_arg,
        "--env",
        "CAFE24_LAUNCH_HMAC_REQUIRED=false",
        "--filter",
        "install.bad_launch_hmac_is_403",
        "--",
        BIN,
        "serve",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let failure = stdout
        .lines()
        .find(|l| l.starts_with("install.bad_launch_hmac_is_403"))
        .unwrap_or_default();
    assert!(
        failure.contains("FAIL") && failure.contains("no hmac"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"));
    assert!(
        logs.join("server-1.stderr.log").exists(),
        "the logs are kept"
    );
    let _ = std::fs::remove_dir_all(&logs);
}
