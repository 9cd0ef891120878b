//! `cafe24-oauth generate`: reads the pipeline's `task-oauth.md`, writes the Cafe24 OAuth module
//! into the app in its own language, and `result-oauth.md` back.
//!
//! A run is: parse and validate the task ([`task`]) → render the target's embedded templates in
//! memory ([`render`]) → plan each file against the app's tree and the last run's manifest
//! ([`plan`], [`manifest`]) → apply the plan all or nothing ([`apply`]) → write the result
//! ([`result`]). Nothing is written before the task is valid, and a user's edit is merged,
//! never overwritten (`--force` is the only way to discard one).

pub mod agent;
pub mod apply;
pub mod deps;
pub mod manifest;
pub mod plan;
pub mod render;
pub mod result;
pub mod scopes;
pub mod target;
pub mod task;
mod yaml;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use apply::Op;
use manifest::Manifest;
use plan::{Change, Plan};
use result::{ResultFile, Status};
use task::Task;

pub const GENERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const DEFAULT_TASK: &str = ".claude/pipeline-state/task-oauth.md";
pub const DEFAULT_RESULT: &str = ".claude/pipeline-state/result-oauth.md";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write the plan and the result.
    Apply,
    /// Print the plan (with `diff`, the diffs); write nothing.
    DryRun { diff: bool },
    /// Exit 1 when the tree differs from what this generator would produce; write nothing.
    Check,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The project root: relative paths (task, result, output_dir) start here.
    pub root: PathBuf,
    pub task: PathBuf,
    pub result: PathBuf,
    pub mode: Mode,
    pub force: bool,
    /// Test hook: make the apply fail after this many renames.
    #[doc(hidden)]
    pub fail_after: Option<usize>,
}

/// What a run printed and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// 0 done, 1 failure (or `--check` found differences), 2 invalid task, 3 conflicts.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Writes the agent definition under `root`.
pub fn write_agent(root: &Path) -> Report {
    let ops = [Op::Write {
        path: agent::PATH.to_owned(),
        contents: agent::DEFINITION.to_owned(),
    }];
    match apply::apply(root, &ops, None) {
        Ok(()) => Report {
            exit_code: 0,
            stdout: format!("wrote {}\n", agent::PATH),
            stderr: String::new(),
        },
        Err(e) => failure(1, format!("writing the agent definition: {e}")),
    }
}

fn failure(code: i32, message: String) -> Report {
    Report {
        exit_code: code,
        stdout: String::new(),
        stderr: format!("{message}\n"),
    }
}

pub fn generate(opts: &Options) -> Report {
    let task_path = opts.root.join(&opts.task);
    let text = match std::fs::read_to_string(&task_path) {
        Ok(text) => text,
        Err(e) => {
            return invalid(
                opts,
                vec![format!("{}: cannot be read: {e}", opts.task.display())],
            )
        }
    };
    let task = match task::parse(&text) {
        Ok(task) => task,
        Err(errors) => {
            let errors = errors
                .iter()
                .map(|e| format!("{}: {e}", opts.task.display()))
                .collect();
            return invalid(opts, errors);
        }
    };
    match run(opts, &task) {
        Ok(report) => report,
        Err(message) => {
            let mut result = base_result(&task);
            result.status = Some(Status::Failed);
            result.errors = vec![message.clone()];
            result.next_action =
                format!("Fix the problem and run `cafe24-oauth generate` again: {message}");
            if opts.mode == Mode::Apply {
                write_result(opts, &result);
            }
            failure(1, message)
        }
    }
}

/// An invalid task: nothing generated; the result says why (when applying).
fn invalid(opts: &Options, errors: Vec<String>) -> Report {
    if opts.mode == Mode::Apply {
        let result = ResultFile {
            status: Some(Status::Failed),
            next_action: "Fix the task file (every error names the field and line) and run `cafe24-oauth generate` again.".into(),
            generator_version: GENERATOR_VERSION.into(),
            errors: errors.clone(),
            ..ResultFile::default()
        };
        write_result(opts, &result);
    }
    let mut stderr = String::new();
    for e in &errors {
        let _ = writeln!(stderr, "{e}");
    }
    Report {
        exit_code: 2,
        stdout: String::new(),
        stderr,
    }
}

fn write_result(opts: &Options, result: &ResultFile) {
    let path = opts.result.to_string_lossy().replace('\\', "/");
    let _ = apply::apply(
        &opts.root,
        &[Op::Write {
            path,
            contents: result.render(),
        }],
        None,
    );
}

fn base_result(task: &Task) -> ResultFile {
    ResultFile {
        output_dir: Some(format!("{}/", task.output_dir).replace("./", "")),
        language: Some(task.language.clone()),
        framework: Some(task.framework.clone()),
        scopes_configured: task.required_scopes.clone(),
        generator_version: GENERATOR_VERSION.into(),
        ..ResultFile::default()
    }
}

fn run(opts: &Options, task: &Task) -> Result<Report, String> {
    let output = opts.root.join(&task.output_dir);
    ensure_inside(&opts.root, &task.output_dir)?;
    let rendered = render::render(task, GENERATOR_VERSION).map_err(|e| e.to_string())?;
    let previous = Manifest::load(&output).map_err(|e| e.to_string())?;
    let mut concerned: Vec<&String> = rendered.keys().collect();
    if let Some((m, _)) = &previous {
        concerned.extend(m.files.keys());
    }
    let mut disk = BTreeMap::new();
    for path in concerned {
        ensure_inside(&opts.root, &format!("{}/{path}", task.output_dir))?;
        match std::fs::read(output.join(path)) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    format!(
                        "{}/{path} is not UTF-8 text; move it aside or fix it",
                        task.output_dir
                    )
                })?;
                disk.insert(path.clone(), text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}/{path}: {e}", task.output_dir)),
        }
    }
    let plan = plan::plan(&plan::Inputs {
        target: task.target(),
        rendered: &rendered,
        disk: &disk,
        previous: previous.as_ref(),
        force: opts.force,
    });
    let normalized = serde_json::to_value(task).map_err(|e| e.to_string())?;
    let next = plan::next_manifest(&plan, GENERATOR_VERSION, normalized);
    let ops = operations(task, &plan, previous.as_ref(), &next);

    let mut stdout = String::new();
    for f in &plan.files {
        let _ = write!(
            stdout,
            "{:<9} {}/{}",
            f.change.to_string(),
            task.output_dir,
            f.path
        );
        if let Some(note) = &f.note {
            let _ = write!(stdout, "  ({note})");
        }
        stdout.push('\n');
    }
    for clash in &plan.clashes {
        let _ = writeln!(stdout, "clash     {clash}");
    }
    match opts.mode {
        Mode::DryRun { diff } => {
            if diff {
                for f in &plan.files {
                    let old = disk.get(&f.path).map_or("", String::as_str);
                    let new = if f.remove {
                        ""
                    } else {
                        f.write.as_deref().unwrap_or(old)
                    };
                    if old != new {
                        let patch = diffy::create_patch(old, new).to_string();
                        let _ = writeln!(
                            stdout,
                            "--- a/{0}/{1}\n+++ b/{0}/{1}",
                            task.output_dir, f.path
                        );
                        stdout.push_str(
                            patch
                                .split_once("+++ modified\n")
                                .map_or(&patch, |(_, rest)| rest),
                        );
                    }
                }
            }
            let _ = writeln!(stdout, "dry run: nothing was written");
            Ok(Report {
                exit_code: 0,
                stdout,
                stderr: String::new(),
            })
        }
        Mode::Check => {
            let differs = plan
                .files
                .iter()
                .any(|f| f.changes_disk() || f.change == Change::Conflict);
            let _ = writeln!(
                stdout,
                "{}",
                if differs {
                    "check: the tree differs from what this generator produces"
                } else {
                    "check: up to date"
                }
            );
            Ok(Report {
                exit_code: i32::from(differs),
                stdout,
                stderr: String::new(),
            })
        }
        Mode::Apply => {
            apply::apply(&opts.root, &ops, opts.fail_after)
                .map_err(|e| format!("nothing was written: {e}"))?;
            let result = result_for(task, &plan, previous.as_ref().map(|(m, _)| m));
            write_result(opts, &result);
            let status = result.status.unwrap_or(Status::Failed);
            let _ = writeln!(
                stdout,
                "status: {}; result written to {}",
                status.as_str(),
                opts.result.display()
            );
            Ok(Report {
                exit_code: if status == Status::Conflict { 3 } else { 0 },
                stdout,
                stderr: String::new(),
            })
        }
    }
}

/// The disk operations of a plan, the manifest and base files included, relative to the root.
fn operations(
    task: &Task,
    plan: &Plan,
    previous: Option<&manifest::Previous>,
    next: &Manifest,
) -> Vec<Op> {
    let at = |p: &str| {
        if task.output_dir == "." {
            p.to_owned()
        } else {
            format!("{}/{p}", task.output_dir)
        }
    };
    let mut ops = Vec::new();
    for f in &plan.files {
        if let Some(contents) = &f.write {
            ops.push(Op::Write {
                path: at(&f.path),
                contents: contents.clone(),
            });
        } else if f.remove {
            ops.push(Op::Remove { path: at(&f.path) });
        }
        let old_base = previous.and_then(|(_, b)| b.get(&f.path));
        match (&f.base, old_base) {
            (Some(new), Some(old)) if new == old => {}
            (Some(new), _) => ops.push(Op::Write {
                path: at(&manifest::base_path(&f.path)),
                contents: new.clone(),
            }),
            (None, Some(_)) => ops.push(Op::Remove {
                path: at(&manifest::base_path(&f.path)),
            }),
            (None, None) => {}
        }
    }
    if previous.is_none_or(|(m, _)| m != next) {
        ops.push(Op::Write {
            path: at(manifest::FILE),
            contents: next.to_json(),
        });
    }
    ops
}

fn result_for(task: &Task, plan: &Plan, previous: Option<&Manifest>) -> ResultFile {
    let mut result = base_result(task);
    let conflicts: Vec<&str> = plan
        .files
        .iter()
        .filter(|f| f.change == Change::Conflict)
        .map(|f| f.path.as_str())
        .collect();
    result.status = Some(if conflicts.is_empty() {
        Status::Completed
    } else {
        Status::Conflict
    });
    result.files_created = plan
        .files
        .iter()
        .filter(|f| f.base.is_some())
        .map(|f| f.path.clone())
        .collect();
    result.features = features(task);
    result.changes = plan
        .files
        .iter()
        .map(|f| (f.path.clone(), f.change.to_string(), f.note.clone()))
        .collect();
    result.clashes = plan.clashes.clone();
    result.next_action = next_action(task, previous, &conflicts);
    result
}

fn features(task: &Task) -> Vec<String> {
    let mut f = vec![
        "OAuth 2.0 Authorization Code Flow (launch hmac, signed single-use state)".to_owned(),
        "Prompt code exchange (within Cafe24's 60-second window)".to_owned(),
        "Automatic Token Refresh (advisory lock, compare-and-swap, keep-alive)".to_owned(),
        "Encrypted token storage (AES-256-GCM, shared with the cafe24-oauth runtime)".to_owned(),
        "Cafe24 API Client Wrapper (pacing, retries, pagination)".to_owned(),
    ];
    if task.include_webhook_handler {
        f.push("Webhook verification, deduplication and uninstall handling".to_owned());
    }
    f
}

fn next_action(task: &Task, previous: Option<&Manifest>, conflicts: &[&str]) -> String {
    let mut steps = Vec::new();
    if !conflicts.is_empty() {
        steps.push(format!(
            "Resolve the conflict markers in {} (a user edit and the new version changed the same lines), then run `cafe24-oauth generate` again.",
            conflicts.join(", ")
        ));
    }
    let previous_scopes: Vec<String> = previous
        .and_then(|m| m.task.get("required_scopes"))
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let added: Vec<&String> = task
        .required_scopes
        .iter()
        .filter(|s| previous.is_some() && !previous_scopes.contains(s))
        .collect();
    if !added.is_empty() {
        steps.push(format!(
            "The scopes grew ({}): update CAFE24_SCOPES and the app's scopes in the Cafe24 developer console; every installed mall must re-authorize (open the app again) before calls needing them succeed.",
            added.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut env = vec![
        "CAFE24_CLIENT_ID",
        "CAFE24_CLIENT_SECRET",
        "CAFE24_REDIRECT_URI",
        "CAFE24_SCOPES",
        "EXPECTED_STATE_SECRET",
        "TOKEN_ENCRYPTION_KEYS",
        "DATABASE_URL",
    ];
    if task.include_webhook_handler {
        env.extend(["CAFE24_WEBHOOK_AUTH", "CAFE24_WEBHOOK_KEY"]);
    }
    steps.push(format!(
        "Register the app's redirect URI (https://<your host>/oauth/callback, the value of CAFE24_REDIRECT_URI) and its App URL (https://<your host>/install) in the Cafe24 developer console, with scopes {}.",
        task.required_scopes.join(",")
    ));
    steps.push(format!(
        "Set the environment variables listed in {}/.env.example ({}).",
        task.output_dir,
        env.join(", ")
    ));
    steps.push("Then hand over to business logic (CodeGenerator가 비즈니스 로직 구현), calling Cafe24 only through the generated client.".to_owned());
    steps.join(" ")
}

/// `rel` (under `root`) must not leave the project, through `..` or through a symlink.
fn ensure_inside(root: &Path, rel: &str) -> Result<(), String> {
    let root_real = root
        .canonicalize()
        .map_err(|e| format!("the project root {}: {e}", root.display()))?;
    let mut at = root.to_path_buf();
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(name) => at.push(name),
            Component::CurDir => continue,
            _ => return Err(format!("{rel} leaves the project")),
        }
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let real = at
                    .canonicalize()
                    .map_err(|e| format!("{}: {e}", at.display()))?;
                if !real.starts_with(&root_real) {
                    return Err(format!(
                        "{rel} escapes the project through the symlink {}",
                        at.strip_prefix(root).unwrap_or(&at).display()
                    ));
                }
            }
            Ok(_) => {}
            Err(_) => break, // does not exist yet: nothing below can be a symlink
        }
    }
    Ok(())
}
