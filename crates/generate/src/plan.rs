//! Decides, per file, what a run does — before anything is written. Missing → create;
//! identical → unchanged; unmodified since generation → update; edited by the user → three-way
//! merge against the stored base (conflict markers if both changed the same lines); deleted by
//! the user → left deleted; no longer generated and unmodified → deleted. Files the user owns
//! are created once; dependency files gain what they lack. `--force` overwrites edits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::deps;
use crate::manifest::{self, Manifest};
use crate::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    Merged,
    Conflict,
    Deleted,
    Skipped,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
            Change::Merged => "merged",
            Change::Conflict => "conflict",
            Change::Deleted => "deleted",
            Change::Skipped => "skipped",
        })
    }
}

/// What happens to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Relative to `output_dir`.
    pub path: String,
    pub change: Change,
    /// The file's new contents, if it is written.
    pub write: Option<String>,
    /// The file is removed.
    pub remove: bool,
    /// The base to record in the manifest (`None`: the file leaves the manifest).
    pub base: Option<String>,
    /// Why, for skipped files and merges.
    pub note: Option<String>,
}

impl Planned {
    fn new(path: &str, change: Change) -> Self {
        Self {
            path: path.to_owned(),
            change,
            write: None,
            remove: false,
            base: None,
            note: None,
        }
    }

    pub fn changes_disk(&self) -> bool {
        self.write.is_some() || self.remove
    }
}

pub struct Inputs<'a> {
    pub target: &'a Target,
    /// This run's render: path → contents.
    pub rendered: &'a BTreeMap<String, String>,
    /// The files on disk now (those that exist among every path concerned).
    pub disk: &'a BTreeMap<String, String>,
    /// The last run's manifest and its base contents, if any.
    pub previous: Option<&'a manifest::Previous>,
    pub force: bool,
}

pub struct Plan {
    pub files: Vec<Planned>,
    pub clashes: Vec<String>,
}

impl Plan {
    pub fn has_conflicts(&self) -> bool {
        self.files.iter().any(|f| f.change == Change::Conflict)
    }

    pub fn changes_disk(&self) -> bool {
        self.files.iter().any(Planned::changes_disk)
    }
}

pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let (manifest, bases) = match inputs.previous {
        Some((m, b)) => (Some(m), Some(b)),
        None => (None, None),
    };
    let tracked = |path: &str| manifest.is_some_and(|m| m.files.contains_key(path));
    let base_of = |path: &str| bases.and_then(|b| b.get(path));
    let mut files = Vec::new();
    let mut clashes = Vec::new();

    for (path, new) in inputs.rendered {
        let disk = inputs.disk.get(path);
        let mut p = match disk {
            None if tracked(path) && !inputs.force => {
                let mut p = Planned::new(path, Change::Skipped);
                p.note = Some("deleted by the user; left deleted".into());
                p
            }
            None => {
                let mut p = Planned::new(path, Change::Created);
                p.write = Some(new.clone());
                p
            }
            Some(current) if current == new => Planned::new(path, Change::Unchanged),
            Some(_) if inputs.target.is_user_owned(path) && !inputs.force => {
                let mut p = Planned::new(path, Change::Skipped);
                p.note = Some("the app's file: created once, never overwritten".into());
                p
            }
            Some(current)
                if inputs.target.is_dependency_file(path)
                    && !inputs.force
                    && deps::merge(path, current, new).is_some() =>
            {
                let (merged, found) = deps::merge(path, current, new).unwrap_or_default();
                clashes.extend(found.into_iter().map(|c| format!("{path}: {c}")));
                if merged == *current {
                    Planned::new(path, Change::Unchanged)
                } else {
                    let mut p = Planned::new(path, Change::Merged);
                    p.write = Some(merged);
                    p.note = Some("added the entries the app lacked".into());
                    p
                }
            }
            Some(current) => match base_of(path) {
                _ if inputs.force => {
                    let mut p = Planned::new(path, Change::Updated);
                    p.write = Some(new.clone());
                    p
                }
                Some(base) if base == current => {
                    let mut p = Planned::new(path, Change::Updated);
                    p.write = Some(new.clone());
                    p
                }
                // Edited by the user and our side did not change: the edit stands.
                Some(base) if base == new => {
                    let mut p = Planned::new(path, Change::Unchanged);
                    p.note = Some("kept the user's edit".into());
                    p
                }
                base => {
                    let ancestor = base.map_or("", String::as_str);
                    let (change, text, note) = match diffy::merge(ancestor, current, new) {
                        Ok(merged) => (Change::Merged, merged, "merged the user's edit with the new version"),
                        Err(marked) => (
                            Change::Conflict,
                            marked,
                            "the user's edit and the new version change the same lines: resolve the markers",
                        ),
                    };
                    let mut p = Planned::new(path, change);
                    if text != *current {
                        p.write = Some(text);
                    }
                    p.note = Some(note.into());
                    p
                }
            },
        };
        p.base = Some(new.clone());
        files.push(p);
    }

    // Files the last run generated that this one does not.
    let rendered: BTreeSet<&String> = inputs.rendered.keys().collect();
    if let Some(manifest) = manifest {
        for path in manifest.files.keys().filter(|p| !rendered.contains(p)) {
            let p = match (inputs.disk.get(path), base_of(path)) {
                (None, _) => Planned::new(path, Change::Unchanged),
                (Some(current), Some(base)) if current == base || inputs.force => {
                    let mut p = Planned::new(path, Change::Deleted);
                    p.remove = true;
                    p
                }
                (Some(_), _) => {
                    let mut p = Planned::new(path, Change::Skipped);
                    p.note = Some("no longer generated, but edited by the user: kept".into());
                    p
                }
            };
            files.push(p);
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Plan { files, clashes }
}

/// The manifest after applying `plan`.
pub fn next_manifest(plan: &Plan, generator_version: &str, task: serde_json::Value) -> Manifest {
    Manifest {
        generator_version: generator_version.to_owned(),
        task,
        files: plan
            .files
            .iter()
            .filter_map(|p| {
                p.base.as_ref().map(|b| {
                    (
                        p.path.clone(),
                        manifest::Entry {
                            sha256: manifest::sha256(b),
                        },
                    )
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::TARGETS;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn run(
        rendered: &[(&str, &str)],
        disk: &[(&str, &str)],
        bases: &[(&str, &str)],
        force: bool,
    ) -> Plan {
        let previous = (!bases.is_empty()).then(|| {
            let bases = map(bases);
            let manifest = Manifest {
                generator_version: "0".into(),
                task: serde_json::Value::Null,
                files: bases
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            manifest::Entry {
                                sha256: manifest::sha256(v),
                            },
                        )
                    })
                    .collect(),
            };
            (manifest, bases)
        });
        plan(&Inputs {
            target: &TARGETS[0],
            rendered: &map(rendered),
            disk: &map(disk),
            previous: previous.as_ref(),
            force,
        })
    }

    fn change(plan: &Plan, path: &str) -> Change {
        plan.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.change)
            .expect(path)
    }

    #[test]
    fn the_regeneration_rules() {
        let plan = run(
            &[
                ("new.py", "n\n"),
                ("same.py", "s\n"),
                ("untouched.py", "v2\n"),
                ("gone.py", "g\n"),
            ],
            &[
                ("same.py", "s\n"),
                ("untouched.py", "v1\n"),
                ("old.py", "o\n"),
            ],
            &[
                ("same.py", "s\n"),
                ("untouched.py", "v1\n"),
                ("gone.py", "g\n"),
                ("old.py", "o\n"),
            ],
            false,
        );
        assert_eq!(change(&plan, "new.py"), Change::Created);
        assert_eq!(change(&plan, "same.py"), Change::Unchanged);
        assert_eq!(change(&plan, "untouched.py"), Change::Updated);
        assert_eq!(
            change(&plan, "gone.py"),
            Change::Skipped,
            "deleted by the user: left deleted"
        );
        assert_eq!(
            change(&plan, "old.py"),
            Change::Deleted,
            "no longer generated, unmodified"
        );
    }

    #[test]
    fn a_user_edit_is_merged_or_reported_as_a_conflict_never_overwritten() {
        let base = "a\nb\nc\nd\ne\n";
        let user = "a\nB (the user's)\nc\nd\ne\n";
        let ours = "a\nb\nc\nd\nE (new version)\n";
        let plan = run(
            &[("f.py", ours)],
            &[("f.py", user)],
            &[("f.py", base)],
            false,
        );
        let f = &plan.files[0];
        assert_eq!(f.change, Change::Merged);
        assert_eq!(
            f.write.as_deref(),
            Some("a\nB (the user's)\nc\nd\nE (new version)\n")
        );

        let clash = "a\nb\nc\nd\nX (user)\n";
        let plan = run(
            &[("f.py", ours)],
            &[("f.py", clash)],
            &[("f.py", base)],
            false,
        );
        assert_eq!(plan.files[0].change, Change::Conflict);
        let text = plan.files[0].write.as_deref().expect("markers");
        assert!(
            text.contains("<<<<<<<")
                && text.contains("X (user)")
                && text.contains("E (new version)")
        );
        assert!(plan.has_conflicts());

        let forced = run(
            &[("f.py", ours)],
            &[("f.py", clash)],
            &[("f.py", base)],
            true,
        );
        assert_eq!(forced.files[0].change, Change::Updated);
        assert_eq!(forced.files[0].write.as_deref(), Some(ours));
    }

    #[test]
    fn an_edit_stands_when_the_new_version_is_the_same_and_edited_leftovers_stay() {
        let plan = run(
            &[("f.py", "v1\n")],
            &[("f.py", "edited\n"), ("old.py", "edited\n")],
            &[("f.py", "v1\n"), ("old.py", "o\n")],
            false,
        );
        assert_eq!(change(&plan, "f.py"), Change::Unchanged);
        assert_eq!(change(&plan, "old.py"), Change::Skipped);
        assert!(!plan.changes_disk());
    }

    #[test]
    fn the_apps_own_files_are_created_once_and_dependencies_merged() {
        let plan = run(
            &[
                ("main.py", "ours\n"),
                ("requirements.txt", "httpx>=0.27\nfastapi>=0.115\n"),
            ],
            &[
                ("main.py", "the app's\n"),
                ("requirements.txt", "fastapi==0.110.0\n"),
            ],
            &[],
            false,
        );
        assert_eq!(change(&plan, "main.py"), Change::Skipped);
        assert_eq!(change(&plan, "requirements.txt"), Change::Merged);
        assert_eq!(plan.clashes.len(), 1, "{:?}", plan.clashes);
    }
}
