//! Renders a target's template tree for a task, in memory. Templates are embedded in the binary;
//! files ending in `.j2` go through minijinja (strict undefined, no auto-escaping) and lose the
//! suffix, the others are copied as they are.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::task::Task;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The template files of a target folder: (path inside the folder, contents).
pub fn template_files(dir: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    embedded::FILES.iter().filter_map(move |(path, contents)| {
        path.strip_prefix(dir)
            .and_then(|p| p.strip_prefix('/'))
            .map(|p| (p, *contents))
    })
}

/// A template folder name replaced by the package's path.
pub const PACKAGE_DIR: &str = "__package_path__";

#[derive(Debug, thiserror::Error)]
#[error("template {path}: {message}")]
pub struct RenderError {
    pub path: String,
    pub message: String,
}

/// Every output file of the task's target: path relative to `output_dir` → contents.
pub fn render(
    task: &Task,
    generator_version: &str,
) -> Result<BTreeMap<String, String>, RenderError> {
    let target = task.target();
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    let package = task.java_package();
    let package_path = package.replace('.', "/");
    let context = minijinja::context! {
        app_name => &task.app_name,
        package_name => task.package_name(),
        package => &package,
        package_path => &package_path,
        scopes => &task.required_scopes,
        include_webhook_handler => task.include_webhook_handler,
        generator_version => generator_version,
    };
    let mut out = BTreeMap::new();
    for (path, contents) in template_files(target.dir) {
        let (path, rendered) = match path.strip_suffix(".j2") {
            Some(plain) => {
                let text = env
                    .render_str(contents, &context)
                    .map_err(|e| RenderError {
                        path: path.to_owned(),
                        message: format!("{e:#}"),
                    })?;
                (plain, text)
            }
            None => (path, contents.to_owned()),
        };
        // Folders named for the package (Kotlin): `__package_path__` → `com/example/app`.
        let path = path.replace(PACKAGE_DIR, &package_path);
        if target.is_webhook_only(&path) && !task.include_webhook_handler {
            continue;
        }
        out.insert(path, rendered);
    }
    for (name, sql) in embedded::MIGRATIONS {
        out.insert(
            format!("{}/{name}", target.migrations_dir),
            (*sql).to_owned(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::TARGETS;

    fn task(language: &str, framework: &str, webhooks: bool) -> Task {
        Task {
            app_name: "inventory-alert-app".into(),
            language: language.into(),
            framework: framework.into(),
            required_scopes: vec!["mall.read_product".into(), "mall.read_store".into()],
            output_dir: "apps/inventory-alert-app".into(),
            include_webhook_handler: webhooks,
            package: None,
        }
    }

    #[test]
    fn every_built_target_renders_with_and_without_webhooks_leaving_no_template_syntax() {
        for target in TARGETS.iter().filter(|t| t.built) {
            for webhooks in [true, false] {
                let files = render(
                    &task(target.language, target.framework, webhooks),
                    "0.0.0-test",
                )
                .unwrap_or_else(|e| panic!("{}: {e}", target.dir));
                assert!(!files.is_empty(), "{}", target.dir);
                for (path, text) in &files {
                    assert!(!path.ends_with(".j2"), "{path}");
                    if template_files(target.dir).any(|(p, _)| p == format!("{path}.j2")) {
                        for syntax in ["{{", "{%", "{#"] {
                            assert!(
                                !text.contains(syntax),
                                "{}/{path} keeps {syntax}",
                                target.dir
                            );
                        }
                    }
                }
                assert_eq!(
                    files.keys().any(|p| target.is_webhook_only(p)),
                    webhooks,
                    "{}: webhook files follow include_webhook_handler",
                    target.dir
                );
            }
        }
    }

    #[test]
    fn the_migrations_are_the_runtimes_byte_for_byte() {
        let files = render(&task("python", "fastapi", false), "1").expect("render");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../store/migrations/postgres");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).expect("migrations").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let runtime = std::fs::read_to_string(entry.path()).expect("read");
            assert_eq!(
                files.get(&format!("migrations/{name}")),
                Some(&runtime),
                "{name}"
            );
            count += 1;
        }
        assert!(count >= 4);
    }

    #[test]
    fn rendering_is_deterministic() {
        let t = task("python", "fastapi", true);
        assert_eq!(render(&t, "1").expect("a"), render(&t, "1").expect("b"));
    }
}
