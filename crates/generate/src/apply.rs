//! Writes a plan all or nothing. Every new content is first written to a temporary file beside
//! its target; only then are targets swapped in by rename, each replaced or removed file kept
//! as a backup until the end. Any failure puts back what was swapped, removes the temporary
//! files and the folders it created: the tree is left as it was.

use std::path::{Path, PathBuf};

/// One change to the disk, relative to the root it is applied under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write { path: String, contents: String },
    Remove { path: String },
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct ApplyError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

const TMP: &str = ".cafe24-oauth-tmp";
const BAK: &str = ".cafe24-oauth-bak";

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Applies `ops` under `root`. `fail_after`: a test hook that fails after that many renames.
pub fn apply(root: &Path, ops: &[Op], fail_after: Option<usize>) -> Result<(), ApplyError> {
    let mut created_dirs: Vec<PathBuf> = Vec::new();
    let mut temps: Vec<PathBuf> = Vec::new();
    let mut done: Vec<(PathBuf, Option<PathBuf>, bool)> = Vec::new(); // (target, backup, wrote)
    let result = (|| {
        // Phase 1: every new content in a temporary file; nothing visible changes.
        for op in ops {
            if let Op::Write { path, contents } = op {
                let target = root.join(path);
                if let Some(parent) = target.parent() {
                    create_dirs(parent, &mut created_dirs).map_err(|e| err(path, e))?;
                }
                let tmp = sibling(&target, TMP);
                std::fs::write(&tmp, contents).map_err(|e| err(path, e))?;
                temps.push(tmp);
            }
        }
        // Phase 2: swap them in, keeping a backup of whatever was there.
        for (i, op) in ops.iter().enumerate() {
            if fail_after.is_some_and(|n| i >= n) {
                return Err(err(op_path(op), std::io::Error::other("injected failure")));
            }
            let (path, wrote) = match op {
                Op::Write { path, .. } => (path, true),
                Op::Remove { path } => (path, false),
            };
            let target = root.join(path);
            let backup = if target.exists() {
                let backup = sibling(&target, BAK);
                std::fs::rename(&target, &backup).map_err(|e| err(path, e))?;
                Some(backup)
            } else {
                None
            };
            done.push((target.clone(), backup, false));
            if wrote {
                std::fs::rename(sibling(&target, TMP), &target).map_err(|e| err(path, e))?;
                if let Some(last) = done.last_mut() {
                    last.2 = true;
                }
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            for (_, backup, _) in &done {
                if let Some(b) = backup {
                    let _ = std::fs::remove_file(b);
                }
            }
            Ok(())
        }
        Err(e) => {
            // Undo in reverse: remove what was written, put the backups back.
            for (target, backup, wrote) in done.iter().rev() {
                if *wrote {
                    let _ = std::fs::remove_file(target);
                }
                if let Some(b) = backup {
                    let _ = std::fs::rename(b, target);
                }
            }
            for tmp in &temps {
                let _ = std::fs::remove_file(tmp);
            }
            for dir in created_dirs.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            Err(e)
        }
    }
}

fn op_path(op: &Op) -> &str {
    match op {
        Op::Write { path, .. } | Op::Remove { path } => path,
    }
}

fn err(path: &str, source: std::io::Error) -> ApplyError {
    ApplyError {
        path: path.to_owned(),
        source,
    }
}

/// `create_dir_all` that remembers which folders it made (outermost first).
fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent, created)?;
    }
    std::fs::create_dir(dir)?;
    created.push(dir.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
            for e in std::fs::read_dir(dir).expect("read dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.push((
                        p.strip_prefix(root).expect("in").display().to_string() + "/",
                        String::new(),
                    ));
                    walk(root, &p, out);
                } else {
                    out.push((
                        p.strip_prefix(root).expect("in").display().to_string(),
                        std::fs::read_to_string(&p).unwrap_or_default(),
                    ));
                }
            }
        }
        walk(root, root, &mut out);
        out.sort();
        out
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cafe24-apply-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("keep")).expect("mkdir");
        std::fs::write(dir.join("keep/a.txt"), "old a").expect("write");
        std::fs::write(dir.join("gone.txt"), "old gone").expect("write");
        dir
    }

    fn ops() -> Vec<Op> {
        vec![
            Op::Write {
                path: "keep/a.txt".into(),
                contents: "new a".into(),
            },
            Op::Write {
                path: "new/deep/b.txt".into(),
                contents: "b".into(),
            },
            Op::Remove {
                path: "gone.txt".into(),
            },
        ]
    }

    #[test]
    fn a_failure_midway_leaves_the_tree_as_it_was() {
        for n in 0..3 {
            let root = scratch();
            let before = tree(&root);
            assert!(apply(&root, &ops(), Some(n)).is_err());
            assert_eq!(tree(&root), before, "failure after {n} renames");
            let _ = std::fs::remove_dir_all(&root);
        }
    }

    #[test]
    fn a_clean_run_writes_everything_and_leaves_no_temporary_files() {
        let root = scratch();
        apply(&root, &ops(), None).expect("applied");
        assert_eq!(
            tree(&root),
            vec![
                ("keep/".to_owned(), String::new()),
                ("keep/a.txt".to_owned(), "new a".to_owned()),
                ("new/".to_owned(), String::new()),
                ("new/deep/".to_owned(), String::new()),
                ("new/deep/b.txt".to_owned(), "b".to_owned()),
            ]
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
