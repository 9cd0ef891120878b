//! Dependency files the app already has gain only the dependencies they lack: a version the app
//! chose is never changed; a different requirement of ours is reported as a clash.

/// Merges our version of a dependency or ignore file into the app's, by the file's kind.
/// `None`: the app's file cannot be read as one (it is then planned like any edited file).
pub fn merge(path: &str, existing: &str, ours: &str) -> Option<(String, Vec<String>)> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name {
        "package.json" => merge_package_json(existing, ours),
        "pom.xml" => merge_pom(existing, ours),
        ".gitignore" | ".gitattributes" => Some((merge_lines(existing, ours), Vec::new())),
        _ => Some(merge_requirements(existing, ours)),
    }
}

/// `requirements.txt`: the existing text with our missing requirements appended, and the clashes.
pub fn merge_requirements(existing: &str, ours: &str) -> (String, Vec<String>) {
    let theirs: Vec<(String, String)> = requirements(existing).collect();
    let mut added = Vec::new();
    let mut clashes = Vec::new();
    for (name, line) in requirements(ours) {
        match theirs.iter().find(|(n, _)| *n == name) {
            None => added.push(line),
            Some((_, their_line)) if spec(their_line) != spec(&line) => clashes.push(format!(
                "the app requires `{their_line}`, the module was tested with `{line}`; the app's choice is kept"
            )),
            Some(_) => {}
        }
    }
    if added.is_empty() {
        return (existing.to_owned(), clashes);
    }
    let mut text = existing.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# Added by cafe24-oauth generate for the Cafe24 OAuth module\n");
    for line in added {
        text.push_str(&line);
        text.push('\n');
    }
    (text, clashes)
}

/// Line files (`.gitignore`): the existing text with the lines it lacks appended.
pub fn merge_lines(existing: &str, ours: &str) -> String {
    let have: Vec<&str> = existing.lines().map(str::trim).collect();
    let missing: Vec<&str> = ours
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !have.contains(&l.trim()))
        .collect();
    if missing.is_empty() {
        return existing.to_owned();
    }
    let mut text = existing.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# Added by cafe24-oauth generate\n");
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// (normalized name, the requirement as written) of each requirement line.
fn requirements(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.lines().filter_map(|raw| {
        let line = raw.split(" #").next().unwrap_or_default().trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            return None;
        }
        let end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(line.len());
        let name = line[..end].to_lowercase().replace(['_', '.'], "-");
        (!name.is_empty()).then(|| (name, line.to_owned()))
    })
}

/// The requirement without its name and extras: what decides the version.
fn spec(line: &str) -> String {
    let rest = line
        .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']').map_or(r, |(_, after)| after),
        None => rest,
    };
    rest.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_files_gain_only_missing_lines() {
        assert_eq!(
            merge_lines("target/\n.env\n", ".env\n__pycache__/\n"),
            "target/\n.env\n# Added by cafe24-oauth generate\n__pycache__/\n"
        );
        assert_eq!(merge_lines(".env\n", ".env\n"), ".env\n");
    }

    #[test]
    fn missing_requirements_are_added_and_the_apps_versions_kept() {
        let existing = "fastapi==0.110.0\nrequests>=2  # http\n";
        let ours = "fastapi>=0.115,<1\nhttpx>=0.27,<1\npsycopg[binary,pool]>=3.2,<4\n";
        let (text, clashes) = merge_requirements(existing, ours);
        assert!(text.starts_with(existing));
        assert!(text.contains("httpx>=0.27,<1\npsycopg[binary,pool]>=3.2,<4\n"));
        assert!(!text.contains("fastapi>=0.115"));
        assert_eq!(clashes.len(), 1);
        assert!(clashes[0].contains("fastapi==0.110.0"));
        // Merging again changes nothing and names are compared normalized.
        let (again, _) = merge_requirements(&text, ours);
        assert_eq!(again, text);
        let (same, none) = merge_requirements(
            "Psycopg[binary,pool] >= 3.2, <4\n",
            "psycopg[binary,pool]>=3.2,<4\n",
        );
        assert_eq!(same, "Psycopg[binary,pool] >= 3.2, <4\n");
        assert!(none.is_empty());
    }
}

/// `package.json`: the app's file with the `dependencies`/`devDependencies` it lacks added
/// (its own versions kept, different ones reported), `"type"` set when the app has none.
/// Edited as text so the app's order and formatting stay; `None` if it is not a JSON object.
pub fn merge_package_json(existing: &str, ours: &str) -> Option<(String, Vec<String>)> {
    let theirs: serde_json::Value = serde_json::from_str(existing).ok()?;
    let mine: serde_json::Value = serde_json::from_str(ours).ok()?;
    let (theirs_obj, mine_obj) = (theirs.as_object()?, mine.as_object()?);
    let mut text = existing.to_owned();
    let mut clashes = Vec::new();
    for section in ["dependencies", "devDependencies"] {
        let Some(wanted) = mine_obj.get(section).and_then(|v| v.as_object()) else {
            continue;
        };
        let have = theirs_obj.get(section).and_then(|v| v.as_object());
        let mut missing = Vec::new();
        for (name, version) in wanted {
            match have.and_then(|h| h.get(name)) {
                None => missing.push(format!("{}: {}", serde_json::to_string(name).ok()?, version)),
                Some(v) if v != version => clashes.push(format!(
                    "{section}.{name}: the app requires {v}, the module was tested with {version}; the app's choice is kept"
                )),
                Some(_) => {}
            }
        }
        if missing.is_empty() {
            continue;
        }
        text = match find_object(&text, section) {
            Some(open) => {
                let empty = text[open + 1..].trim_start().starts_with('}');
                let sep = if empty { "" } else { "," };
                let entries = missing.join(",\n    ");
                format!(
                    "{}\n    {entries}{sep}{}",
                    &text[..=open],
                    &text[open + 1..]
                )
            }
            None => {
                let close = text.rfind('}')?;
                let body = missing.join(",\n    ");
                let head = text[..close].trim_end();
                let comma = if head.ends_with('{') { "" } else { "," };
                format!("{head}{comma}\n  \"{section}\": {{\n    {body}\n  }}\n}}\n")
            }
        };
    }
    if theirs_obj.get("type").is_none() {
        if let Some(kind) = mine_obj.get("type") {
            let open = text.find('{')?;
            text = format!(
                "{}\n  \"type\": {kind},{}",
                &text[..=open],
                &text[open + 1..]
            );
        }
    } else if theirs_obj.get("type") != mine_obj.get("type") && mine_obj.get("type").is_some() {
        clashes.push(
            "type: the module is ES modules (\"type\": \"module\"); the app is not".to_owned(),
        );
    }
    serde_json::from_str::<serde_json::Value>(&text).ok()?;
    Some((text, clashes))
}

/// The byte offset of the `{` opening the top-level member `key` of a JSON object text.
fn find_object(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            if depth == 1 && text[i..].starts_with(&needle) {
                let after = text[i + needle.len()..].trim_start().strip_prefix(':')?;
                let start = text.len() - after.len();
                let brace = start + after.len() - after.trim_start().len();
                return (bytes.get(brace) == Some(&b'{')).then_some(brace);
            }
            in_string = true;
        } else if b == b'{' || b == b'[' {
            depth += 1;
        } else if b == b'}' || b == b']' {
            depth = depth.saturating_sub(1);
        }
        i += 1;
    }
    None
}

/// `pom.xml`: the app's file with the `<dependency>` entries of the project's own
/// `<dependencies>` it lacks (by groupId and artifactId) added; versions it set are kept,
/// different ones reported. `None` if the app's pom has no project-level `<dependencies>`.
pub fn merge_pom(existing: &str, ours: &str) -> Option<(String, Vec<String>)> {
    let mine = pom_dependencies(ours)?;
    let (close, theirs) = pom_dependencies_with_end(existing)?;
    let mut clashes = Vec::new();
    let mut add = String::new();
    for dep in &mine {
        match theirs
            .iter()
            .find(|t| t.group == dep.group && t.artifact == dep.artifact)
        {
            None => {
                add.push_str("        ");
                add.push_str(dep.text.trim());
                add.push('\n');
            }
            Some(t) if t.version.is_some() && dep.version.is_some() && t.version != dep.version => {
                clashes.push(format!(
                    "{}:{}: the app requires {}, the module was tested with {}; the app's choice is kept",
                    dep.group,
                    dep.artifact,
                    t.version.as_deref().unwrap_or_default(),
                    dep.version.as_deref().unwrap_or_default()
                ));
            }
            Some(_) => {}
        }
    }
    if add.is_empty() {
        return Some((existing.to_owned(), clashes));
    }
    let line_start = existing[..close].rfind('\n').map_or(0, |i| i + 1);
    let text = format!(
        "{}        <!-- Added by cafe24-oauth generate for the Cafe24 OAuth module -->\n{add}{}",
        &existing[..line_start],
        &existing[line_start..]
    );
    Some((text, clashes))
}

struct PomDependency {
    group: String,
    artifact: String,
    version: Option<String>,
    text: String,
}

fn tag<'a>(block: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = block.find(&open)? + open.len();
    let end = block[start..].find(&format!("</{name}>"))? + start;
    Some(block[start..end].trim())
}

/// The project-level `<dependencies>` (outside `<dependencyManagement>`, `<build>` and
/// `<profiles>`): the offset of its `</dependencies>` and its entries.
fn pom_dependencies_with_end(pom: &str) -> Option<(usize, Vec<PomDependency>)> {
    let mut masked = pom.to_owned();
    for section in ["dependencyManagement", "build", "profiles"] {
        let (open, close) = (format!("<{section}>"), format!("</{section}>"));
        let mut from = 0;
        while let Some(s) = masked[from..].find(&open).map(|i| i + from) {
            let Some(e) = masked[s..].find(&close).map(|i| i + s + close.len()) else {
                break;
            };
            masked.replace_range(s..e, &" ".repeat(e - s));
            from = e;
        }
    }
    let start = masked.find("<dependencies>")? + "<dependencies>".len();
    let end = masked[start..].find("</dependencies>")? + start;
    let body = &pom[start..end];
    let mut deps = Vec::new();
    let mut rest = body;
    while let Some(s) = rest.find("<dependency>") {
        let e = rest[s..].find("</dependency>")? + s + "</dependency>".len();
        let block = &rest[s..e];
        deps.push(PomDependency {
            group: tag(block, "groupId")?.to_owned(),
            artifact: tag(block, "artifactId")?.to_owned(),
            version: tag(block, "version").map(str::to_owned),
            text: block.to_owned(),
        });
        rest = &rest[e..];
    }
    Some((end, deps))
}

fn pom_dependencies(pom: &str) -> Option<Vec<PomDependency>> {
    pom_dependencies_with_end(pom).map(|(_, d)| d)
}

#[cfg(test)]
mod manifests {
    use super::*;

    #[test]
    fn package_json_gains_missing_dependencies_in_place() {
        let existing = "{\n  \"name\": \"shop\",\n  \"dependencies\": {\n    \"express\": \"^4.19.0\"\n  }\n}\n";
        let ours = r#"{"type":"module","dependencies":{"express":"^5.1.0","pg":"^8.13.0"},"devDependencies":{"typescript":"^5.6.0"}}"#;
        let (text, clashes) = merge_package_json(existing, ours).expect("merged");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            v["dependencies"]["express"], "^4.19.0",
            "the app's version is kept"
        );
        assert_eq!(v["dependencies"]["pg"], "^8.13.0");
        assert_eq!(v["devDependencies"]["typescript"], "^5.6.0");
        assert_eq!(v["type"], "module");
        assert!(
            text.starts_with("{\n  \"type\": \"module\",\n  \"name\": \"shop\""),
            "{text}"
        );
        assert_eq!(clashes.len(), 1);
        let (again, _) = merge_package_json(&text, ours).expect("again");
        assert_eq!(again, text);
        assert!(merge_package_json("[1]", ours).is_none());
    }

    #[test]
    fn pom_gains_missing_dependencies_and_reports_versions() {
        let existing = "<project>\n  <dependencyManagement><dependencies><dependency><groupId>x</groupId><artifactId>bom</artifactId></dependency></dependencies></dependencyManagement>\n  <dependencies>\n    <dependency>\n      <groupId>org.postgresql</groupId>\n      <artifactId>postgresql</artifactId>\n      <version>42.7.3</version>\n    </dependency>\n  </dependencies>\n</project>\n";
        let ours = "<project><dependencies><dependency><groupId>org.postgresql</groupId><artifactId>postgresql</artifactId><version>42.7.14</version></dependency><dependency><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-jdbc</artifactId></dependency></dependencies></project>";
        let (text, clashes) = merge_pom(existing, ours).expect("merged");
        assert!(text.contains("<artifactId>spring-boot-starter-jdbc</artifactId>"));
        assert!(text.contains("<version>42.7.3</version>") && !text.contains("42.7.14"));
        assert_eq!(clashes.len(), 1, "{clashes:?}");
        let (again, _) = merge_pom(&text, ours).expect("again");
        assert_eq!(again, text);
    }
}
