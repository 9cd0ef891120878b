//! The result of a run: a table for people (closing with exactly `N passed, N failed`), JSON
//! for scripts, JUnit XML for CI.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use crate::cases::CaseResult;

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub results: Vec<CaseResult>,
    pub duration: Duration,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// `N passed, N failed`.
    pub fn closing_line(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    pub fn table(&self) -> String {
        let width = self
            .results
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("{:<width$}  {:<6}  {:>8}  why\n", "case", "result", "time");
        for r in &self.results {
            let (result, why) = match &r.outcome {
                Ok(note) => ("pass", note.clone()),
                Err(message) => ("FAIL", format!("{message} [contract: {}]", r.section)),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {result:<6}  {:>8}  {why}",
                r.name,
                time(r.duration)
            );
        }
        let _ = writeln!(out, "{}", self.closing_line());
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let cases: Vec<_> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "section": r.section,
                    "passed": r.passed(),
                    "message": match &r.outcome { Ok(m) | Err(m) => m },
                    "duration_ms": r.duration.as_millis() as u64,
                })
            })
            .collect();
        json!({
            "passed": self.passed(),
            "failed": self.failed(),
            "duration_ms": self.duration.as_millis() as u64,
            "cases": cases,
        })
    }

    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuite name=\"cafe24-oauth conformance\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            self.results.len(),
            self.failed(),
            self.duration.as_secs_f64()
        );
        for r in &self.results {
            let (group, name) = r.name.split_once('.').unwrap_or(("conformance", r.name));
            let _ = write!(
                out,
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(group),
                escape(name),
                r.duration.as_secs_f64()
            );
            match &r.outcome {
                Ok(_) => out.push_str("/>\n"),
                Err(message) => {
                    let _ = writeln!(
                        out,
                        ">\n    <failure message=\"{}\">contract: {}</failure>\n  </testcase>",
                        escape(message),
                        escape(r.section)
                    );
                }
            }
        }
        out.push_str("</testsuite>\n");
        out
    }
}

fn time(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            results: vec![
                CaseResult {
                    name: "install.ok",
                    section: "HTTP: GET /install",
                    outcome: Ok("fine".into()),
                    duration: Duration::from_millis(12),
                },
                CaseResult {
                    name: "state.bad",
                    section: "Signed state",
                    outcome: Err("answered <200> & \"ok\"".into()),
                    duration: Duration::from_millis(1500),
                },
            ],
            duration: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_table_ends_with_the_counts_and_names_the_section_of_a_failure() {
        let table = report().table();
        assert!(table.ends_with("1 passed, 1 failed\n"), "{table}");
        assert!(table.contains("FAIL") && table.contains("[contract: Signed state]"));
    }

    #[test]
    fn junit_and_json_carry_every_case_escaped() {
        let xml = report().junit();
        assert!(xml.contains("tests=\"2\" failures=\"1\""));
        assert!(xml.contains("answered &lt;200&gt; &amp; &quot;ok&quot;"));
        let json = report().json();
        assert_eq!(json["failed"], 1);
        assert_eq!(json["cases"][1]["passed"], false);
    }
}
