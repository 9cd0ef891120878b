//! Dependency files the app already has gain only the dependencies they lack: a version the app
//! chose is never changed; a different requirement of ours is reported as a clash.

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
