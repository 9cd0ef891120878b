//! `cafe24-oauth generate` as the pipeline runs it: from the project root, exit codes 0, 2, 3.

use std::path::Path;
use std::process::Command;

fn generate(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cafe24-oauth"))
        .arg("generate")
        .args(args)
        .current_dir(root)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn project(task: &str) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!(
        "cafe24-cli-generate-{:016x}",
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(root.join(".claude/pipeline-state")).expect("mkdir");
    std::fs::write(root.join(".claude/pipeline-state/task-oauth.md"), task).expect("task");
    root
}

const TASK: &str = "app_name: inventory-alert-app\nlanguage: python\nframework: fastapi\nrequired_scopes:\n  - mall.read_product\noutput_dir: apps/inventory-alert-app/\ninclude_webhook_handler: false\n";

#[test]
fn generate_exits_0_then_reports_unchanged_and_check_passes() {
    let root = project(TASK);
    let (code, out, err) = generate(&root, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("status: completed"), "{out}");
    assert!(root
        .join("apps/inventory-alert-app/auth/token_manager.py")
        .exists());
    assert!(
        !root.join("apps/inventory-alert-app/webhooks").exists(),
        "no webhook handler asked for"
    );
    let (code, out, _) = generate(&root, &[]);
    assert_eq!(code, Some(0));
    assert!(
        !out.contains("created") && out.contains("unchanged"),
        "{out}"
    );
    assert_eq!(generate(&root, &["--check"]).0, Some(0));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_invalid_task_exits_2_naming_the_field_and_line() {
    let root = project(&TASK.replace("language: python", "language: pyhton"));
    let (code, _, err) = generate(&root, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 2: language: pyhton/fastapi is not a supported language/framework pair"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn usage_errors_exit_2_and_the_agent_is_written() {
    let root = project(TASK);
    assert_eq!(
        generate(&root, &["--diff"]).0,
        Some(2),
        "--diff needs --dry-run"
    );
    let (code, out, _) = generate(&root, &["--agent"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(".claude/agents/cafe24-oauth-generator.md"));
    assert!(root
        .join(".claude/agents/cafe24-oauth-generator.md")
        .exists());
    let _ = std::fs::remove_dir_all(&root);
}
