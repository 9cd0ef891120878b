//! The pipeline's `task-oauth.md`: plain YAML, YAML front matter, or a fenced `yaml` block in
//! Markdown. Parsed into a [`Task`] or a list of errors, each naming the field and its line;
//! nothing is written before the task is valid.

use std::fmt;

use serde::Serialize;

use crate::scopes;
use crate::target::Target;
use crate::yaml::{self, Node};

const KNOWN_KEYS: &[&str] = &[
    "app_name",
    "language",
    "framework",
    "required_scopes",
    "output_dir",
    "include_webhook_handler",
    "package",
];

/// A valid task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub app_name: String,
    pub language: String,
    pub framework: String,
    pub required_scopes: Vec<String>,
    /// Relative to the project root, `/`-separated, no trailing slash (`.` for the root).
    pub output_dir: String,
    pub include_webhook_handler: bool,
    /// Kotlin: the Java package of the module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl Task {
    /// `inventory-alert-app` → `inventory_alert_app`.
    pub fn package_name(&self) -> String {
        self.app_name.replace('-', "_")
    }

    /// Kotlin: the task's `package`, or `com.example.` and the app name's letters and digits.
    pub fn java_package(&self) -> String {
        self.package.clone().unwrap_or_else(|| {
            let name: String = self
                .app_name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            format!("com.example.{name}")
        })
    }

    pub fn target(&self) -> &'static Target {
        Target::find(&self.language, &self.framework)
            .unwrap_or_else(|| unreachable!("validated on parse"))
    }
}

/// One problem with the task, pointing at the field and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub field: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

fn error(field: Option<&str>, line: Option<usize>, message: impl Into<String>) -> TaskError {
    TaskError {
        field: field.map(str::to_owned),
        line,
        message: message.into(),
    }
}

/// The YAML inside a task file and the line it starts on.
fn yaml_part(text: &str) -> (&str, usize) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Front matter: `---` on the first line, up to the next `---`.
    if let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    {
        if let Some(end) = rest.find("\n---") {
            return (&rest[..=end], 2);
        }
    }
    // A fenced ```yaml (or ```yml) block.
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let fence = line.trim();
        if fence == "```yaml" || fence == "```yml" {
            let body = &text[offset + line.len()..];
            let end = body.find("\n```").map_or(body.len(), |e| e + 1);
            return (&body[..end], i + 2);
        }
        offset += line.len();
    }
    (text, 1)
}

/// Parses and validates a task file's text.
pub fn parse(text: &str) -> Result<Task, Vec<TaskError>> {
    let (yaml_text, first_line) = yaml_part(text);
    let root = match yaml::parse(yaml_text, first_line) {
        Ok(Some(root)) => root,
        Ok(None) => return Err(vec![error(None, None, "the task file holds no YAML")]),
        Err(e) => return Err(vec![error(None, Some(e.line), e.message)]),
    };
    let Node::Map { entries, line } = root else {
        return Err(vec![error(
            None,
            Some(root.line()),
            "the task must be a YAML mapping of fields",
        )]);
    };
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, key_line, _) in &entries {
        if seen.contains(&key.as_str()) {
            errors.push(error(Some(key), Some(*key_line), "given twice"));
        }
        seen.push(key);
        if !KNOWN_KEYS.contains(&key.as_str()) {
            let hint = scopes::closest(key, KNOWN_KEYS.iter().copied())
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            errors.push(error(
                Some(key),
                Some(*key_line),
                format!(
                    "unknown field{hint}; the fields are {}",
                    KNOWN_KEYS.join(", ")
                ),
            ));
        }
    }
    let field = |name: &str| {
        entries
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, l, node)| (*l, node))
    };
    let text_field = |name: &str, errors: &mut Vec<TaskError>| -> Option<(String, usize)> {
        match field(name) {
            None => {
                errors.push(error(Some(name), None, "required"));
                None
            }
            Some((_, Node::Scalar { value, line, .. })) if !value.trim().is_empty() => {
                Some((value.trim().to_owned(), *line))
            }
            Some((l, _)) => {
                errors.push(error(Some(name), Some(l), "must be a non-empty text value"));
                None
            }
        }
    };

    let app_name = text_field("app_name", &mut errors).and_then(|(v, l)| {
        check_app_name(&v)
            .map_err(|m| errors.push(error(Some("app_name"), Some(l), m)))
            .ok()
            .map(|()| v)
    });
    let language = text_field("language", &mut errors);
    let framework = text_field("framework", &mut errors);
    let target = match (&language, &framework) {
        (Some((lang, l)), Some((fw, _))) => match Target::find(lang, fw) {
            Some(t) if t.built => Some(t),
            Some(t) => {
                errors.push(error(
                    Some("language"),
                    Some(*l),
                    format!(
                        "the {}/{} target is not built yet; supported pairs: {}",
                        t.language,
                        t.framework,
                        Target::supported_pairs()
                    ),
                ));
                None
            }
            None => {
                errors.push(error(
                    Some("language"),
                    Some(*l),
                    format!(
                        "{lang}/{fw} is not a supported language/framework pair; supported pairs: {}",
                        Target::supported_pairs()
                    ),
                ));
                None
            }
        },
        _ => None,
    };
    if let (Some(t), Some(name)) = (target, &app_name) {
        if t.language == "python" && PYTHON_KEYWORDS.contains(&name.replace('-', "_").as_str()) {
            errors.push(error(
                Some("app_name"),
                field("app_name").map(|(l, _)| l),
                "is a Python keyword once `-` becomes `_`; choose another name",
            ));
        }
    }
    let required_scopes = parse_scopes(field("required_scopes"), &mut errors);
    let output_dir = text_field("output_dir", &mut errors).and_then(|(raw, l)| {
        normalize_output_dir(&raw)
            .map_err(|m| errors.push(error(Some("output_dir"), Some(l), m)))
            .ok()
    });
    let include_webhook_handler = match field("include_webhook_handler") {
        None => false,
        Some((
            _,
            Node::Scalar {
                value,
                quoted: false,
                ..
            },
        )) if value == "true" => true,
        Some((
            _,
            Node::Scalar {
                value,
                quoted: false,
                ..
            },
        )) if value == "false" => false,
        Some((l, _)) => {
            errors.push(error(
                Some("include_webhook_handler"),
                Some(l),
                "must be true or false",
            ));
            false
        }
    };
    let package = match field("package") {
        None => None,
        Some((l, Node::Scalar { value, .. })) => {
            if language.as_ref().is_some_and(|(lang, _)| lang != "kotlin") {
                errors.push(error(
                    Some("package"),
                    Some(l),
                    "applies to the kotlin target only",
                ));
            } else if !is_java_package(value) {
                errors.push(error(
                    Some("package"),
                    Some(l),
                    "must be a Java package name such as com.example.inventoryalertapp",
                ));
            }
            Some(value.clone())
        }
        Some((l, _)) => {
            errors.push(error(Some("package"), Some(l), "must be a text value"));
            None
        }
    };
    let _ = line;
    match (app_name, language, framework, required_scopes, output_dir) {
        (
            Some(app_name),
            Some((language, _)),
            Some((framework, _)),
            Some(required_scopes),
            Some(output_dir),
        ) if errors.is_empty() && target.is_some() => Ok(Task {
            app_name,
            language,
            framework,
            required_scopes,
            output_dir,
            include_webhook_handler,
            package,
        }),
        _ => Err(errors),
    }
}

fn parse_scopes(field: Option<(usize, &Node)>, errors: &mut Vec<TaskError>) -> Option<Vec<String>> {
    let name = "required_scopes";
    let Some((l, node)) = field else {
        errors.push(error(Some(name), None, "required"));
        return None;
    };
    let Node::Seq { items, .. } = node else {
        errors.push(error(
            Some(name),
            Some(l),
            "must be a list of Cafe24 scopes",
        ));
        return None;
    };
    if items.is_empty() {
        errors.push(error(Some(name), Some(l), "must name at least one scope"));
        return None;
    }
    let catalogue = scopes::catalogue();
    let mut out: Vec<String> = Vec::new();
    let before = errors.len();
    for (i, item) in items.iter().enumerate() {
        let label = format!("{name}[{i}]");
        let Node::Scalar { value, line, .. } = item else {
            errors.push(error(
                Some(&label),
                Some(item.line()),
                "must be a scope name",
            ));
            continue;
        };
        let scope = value.trim();
        if !scopes::is_known(scope) {
            let hint = scopes::closest(scope, catalogue.iter().map(String::as_str))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            errors.push(error(
                Some(&label),
                Some(*line),
                format!("unknown Cafe24 scope `{scope}`{hint}; see CAFE24.md §8"),
            ));
        } else if out.iter().any(|s| s == scope) {
            errors.push(error(
                Some(&label),
                Some(*line),
                format!("`{scope}` is listed twice"),
            ));
        } else {
            out.push(scope.to_owned());
        }
    }
    (errors.len() == before).then_some(out)
}

fn check_app_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split(['-', '_']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not usable as a package name: lowercase letters and digits, words joined by `-` or `_`, starting with a letter, at most 64 characters",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// A relative, `/`-separated path inside the project: no absolute paths, no `..`, no
/// backslashes or drive letters. (Escaping through a symlink is checked against the disk.)
pub fn normalize_output_dir(raw: &str) -> Result<String, String> {
    if raw.starts_with('/') || raw.contains('\\') || raw.contains(':') {
        return Err(
            "must be a relative path inside the project (no leading `/`, `\\` or drive letter)"
                .into(),
        );
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("must not contain `..`".into()),
            p if p.chars().any(char::is_control) => {
                return Err("must not contain control characters".into())
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

fn is_java_package(raw: &str) -> bool {
    raw.split('.').all(|part| {
        part.starts_with(|c: char| c.is_ascii_lowercase())
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !JAVA_KEYWORDS.contains(&part)
    }) && raw.len() <= 200
}

const PYTHON_KEYWORDS: &[&str] = &[
    "false", "none", "true", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

const JAVA_KEYWORDS: &[&str] = &[
    "abstract",
    "boolean",
    "break",
    "byte",
    "case",
    "catch",
    "char",
    "class",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extends",
    "final",
    "finally",
    "float",
    "for",
    "if",
    "implements",
    "import",
    "instanceof",
    "int",
    "interface",
    "long",
    "native",
    "new",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "short",
    "static",
    "super",
    "switch",
    "synchronized",
    "this",
    "throw",
    "throws",
    "try",
    "void",
    "volatile",
    "while",
    "true",
    "false",
    "null",
];

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "# .claude/pipeline-state/task-oauth.md
app_name: inventory-alert-app
language: python  # or node, kotlin
framework: fastapi  # or express, spring
required_scopes:
  - mall.read_product
  - mall.read_store
output_dir: apps/inventory-alert-app/
include_webhook_handler: true
";

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .expect_err("invalid")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_pipelines_seed_task_parses() {
        let t = parse(SEED).expect("valid");
        assert_eq!(t.app_name, "inventory-alert-app");
        assert_eq!(t.package_name(), "inventory_alert_app");
        assert_eq!(
            (t.language.as_str(), t.framework.as_str()),
            ("python", "fastapi")
        );
        assert_eq!(t.required_scopes, ["mall.read_product", "mall.read_store"]);
        assert_eq!(t.output_dir, "apps/inventory-alert-app");
        assert!(t.include_webhook_handler);
    }

    #[test]
    fn front_matter_and_fenced_blocks_parse_too() {
        let front = format!("---\n{SEED}---\n# Notes\nanything: here\n");
        assert_eq!(
            parse(&front).expect("front matter"),
            parse(SEED).expect("seed")
        );
        let fenced = format!("# OAuth task\n\nSome prose.\n\n```yaml\n{SEED}```\n\nMore prose.\n");
        assert_eq!(parse(&fenced).expect("fenced"), parse(SEED).expect("seed"));
        // Lines point into the Markdown file, not the block.
        let broken = fenced.replace("app_name", "app_nmae");
        assert!(
            errors(&broken)[0]
                .starts_with("line 7: app_nmae: unknown field (did you mean `app_name`?)"),
            "{:?}",
            errors(&broken)
        );
    }

    #[test]
    fn every_error_names_its_field_and_line() {
        let bad = SEED
            .replace("inventory-alert-app\n", "Inventory Alert!\n")
            .replace("mall.read_store", "mall.read_stores")
            .replace("apps/inventory-alert-app/", "../elsewhere")
            .replace(
                "include_webhook_handler: true",
                "include_webhook_handler: yes\nwebhooks: true",
            );
        let e = errors(&bad);
        assert!(
            e.iter().any(|m| m.starts_with(
                "line 2: app_name: `Inventory Alert!` is not usable as a package name"
            )),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.starts_with("line 7: required_scopes[1]: unknown Cafe24 scope `mall.read_stores` (did you mean `mall.read_store`?)")), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m == "line 8: output_dir: must not contain `..`"),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m == "line 9: include_webhook_handler: must be true or false"),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("line 10: webhooks: unknown field")),
            "{e:?}"
        );
    }

    #[test]
    fn unsupported_and_unbuilt_pairs_say_which_pairs_exist() {
        let e = errors(&SEED.replace("language: python", "language: ruby"));
        let expected = format!(
            "ruby/fastapi is not a supported language/framework pair; supported pairs: {}",
            Target::supported_pairs()
        );
        assert!(e[0].contains(&expected), "{e:?}");
        assert!(Target::supported_pairs().starts_with("python/fastapi, node/express"));
        // Every planned target is refused plainly, never generated as a stub.
        for t in crate::target::TARGETS.iter().filter(|t| !t.built) {
            let e = errors(
                &SEED
                    .replace("language: python", &format!("language: {}", t.language))
                    .replace("framework: fastapi", &format!("framework: {}", t.framework)),
            );
            let unbuilt = format!("the {}/{} target is not built yet", t.language, t.framework);
            assert!(e[0].contains(&unbuilt), "{e:?}");
        }
    }

    #[test]
    fn output_dirs_stay_inside_the_project() {
        assert_eq!(normalize_output_dir("./apps//x/").as_deref(), Ok("apps/x"));
        assert_eq!(normalize_output_dir("").as_deref(), Ok("."));
        for bad in ["/etc", "a/../../b", "C:\\x", "a\\b"] {
            assert!(normalize_output_dir(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_fields_and_wrong_shapes_are_reported() {
        let e = errors("app_name: x\n");
        for f in ["language", "framework", "required_scopes", "output_dir"] {
            assert!(
                e.iter().any(|m| m == &format!("{f}: required")),
                "{f}: {e:?}"
            );
        }
        assert_eq!(
            errors("- a\n- b\n"),
            ["line 1: the task must be a YAML mapping of fields"]
        );
        assert!(
            errors(&SEED.replace("  - mall.read_product\n  - mall.read_store\n", ""))
                .iter()
                .any(|m| m.contains("required_scopes"))
        );
        assert!(
            errors(&SEED.replace("app_name: inventory-alert-app", "app_name: import"))
                .iter()
                .any(|m| m.contains("Python keyword"))
        );
        assert!(errors(&format!("{SEED}package: com.example.x\n"))
            .iter()
            .any(|m| m.contains("kotlin target only")));
    }
}
