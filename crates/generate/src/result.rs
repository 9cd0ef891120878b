//! `result-oauth.md`: what the pipeline reads back. YAML with the seed's fields exactly —
//! `status`, `output_dir`, `files_created`, `language`, `framework`, `features`,
//! `scopes_configured`, `next_action` — plus `generator_version`, the per-file `changes`,
//! `clashes`, and `errors` on failure.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Completed,
    Failed,
    Conflict,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Conflict => "conflict",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ResultFile {
    pub status: Option<Status>,
    pub output_dir: Option<String>,
    pub files_created: Vec<String>,
    pub language: Option<String>,
    pub framework: Option<String>,
    pub features: Vec<String>,
    pub scopes_configured: Vec<String>,
    pub next_action: String,
    pub generator_version: String,
    /// (path, change, note)
    pub changes: Vec<(String, String, Option<String>)>,
    pub clashes: Vec<String>,
    pub errors: Vec<String>,
}

/// A YAML double-quoted scalar.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        let _ = writeln!(out, "{key}: []");
        return;
    }
    let _ = writeln!(out, "{key}:");
    for item in items {
        let _ = writeln!(out, "  - {}", quote(item));
    }
}

impl ResultFile {
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# .claude/pipeline-state/result-oauth.md (written by cafe24-oauth generate)\n",
        );
        let status = self.status.unwrap_or(Status::Failed);
        let _ = writeln!(out, "status: {}", status.as_str());
        if let Some(dir) = &self.output_dir {
            let _ = writeln!(out, "output_dir: {}", quote(dir));
        }
        list(&mut out, "files_created", &self.files_created);
        if let Some(language) = &self.language {
            let _ = writeln!(out, "language: {language}");
        }
        if let Some(framework) = &self.framework {
            let _ = writeln!(out, "framework: {framework}");
        }
        list(&mut out, "features", &self.features);
        list(&mut out, "scopes_configured", &self.scopes_configured);
        let _ = writeln!(out, "next_action: {}", quote(&self.next_action));
        let _ = writeln!(out, "generator_version: {}", quote(&self.generator_version));
        if self.changes.is_empty() {
            out.push_str("changes: []\n");
        } else {
            out.push_str("changes:\n");
            for (path, change, note) in &self.changes {
                let _ = writeln!(out, "  - path: {}\n    change: {change}", quote(path));
                if let Some(note) = note {
                    let _ = writeln!(out, "    note: {}", quote(note));
                }
            }
        }
        if !self.clashes.is_empty() {
            list(&mut out, "clashes", &self.clashes);
        }
        if !self.errors.is_empty() {
            list(&mut out, "errors", &self.errors);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_reads_back_as_yaml_with_the_seed_fields() {
        let r = ResultFile {
            status: Some(Status::Completed),
            output_dir: Some("apps/inventory-alert-app/".into()),
            files_created: vec!["auth/__init__.py".into()],
            language: Some("python".into()),
            framework: Some("fastapi".into()),
            features: vec!["OAuth 2.0 Authorization Code Flow".into()],
            scopes_configured: vec!["mall.read_product".into()],
            next_action: "Register \"the\" redirect URI\nthen: go".into(),
            generator_version: "0.1.0".into(),
            changes: vec![("auth/__init__.py".into(), "created".into(), None)],
            clashes: vec![],
            errors: vec![],
        };
        let text = r.render();
        let parsed = crate::yaml::parse(&text, 1).expect("yaml").expect("doc");
        let crate::yaml::Node::Map { entries, .. } = parsed else {
            panic!("a map")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "status",
                "output_dir",
                "files_created",
                "language",
                "framework",
                "features",
                "scopes_configured",
                "next_action",
                "generator_version",
                "changes"
            ]
        );
        let next = entries
            .iter()
            .find(|(k, _, _)| k == "next_action")
            .expect("next");
        assert!(
            matches!(&next.2, crate::yaml::Node::Scalar { value, .. } if value == "Register \"the\" redirect URI\nthen: go")
        );
    }
}
