//! The serverless spec's metrics ("호출 수, 에러 수, p50/p95" and code/state outcomes) as
//! CloudWatch Embedded Metric Format: one JSON line on stdout per record, which CloudWatch Logs
//! turns into metrics — no SDK call, nothing on the request path but a `write`. Namespace
//! `Cafe24OAuth`, dimension `Function` (and `Outcome` for the callback). No record carries a
//! code, a state, a token or a mall id: only counts, durations and fixed outcome names.

use std::io::Write as _;

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Cafe24OAuth";

/// A metric: name, value, CloudWatch unit.
pub type Metric<'a> = (&'a str, f64, &'a str);

/// The record for `function` with `metrics`, and extra dimensions (beyond `Function`).
pub fn record(
    function: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Metric<'_>],
    now_ms: i64,
) -> Value {
    let mut sets = vec![Value::from(vec!["Function"])];
    if !dimensions.is_empty() {
        let mut names = vec!["Function"];
        names.extend(dimensions.iter().map(|(k, _)| *k));
        sets.push(Value::from(names));
    }
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("Function".into(), Value::from(function));
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::from(*v));
    }
    for (name, value, _) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root)
}

/// Writes a record as one line on stdout (CloudWatch Logs reads EMF from the function's output).
pub fn emit(function: &str, dimensions: &[(&str, &str)], metrics: &[Metric<'_>]) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let line = record(function, dimensions, metrics, now_ms).to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The callback's outcome name for a status (the error codes of the contract, coarsely).
pub fn callback_outcome(status: u16) -> &'static str {
    match status {
        200 => "saved",
        400 => "refused_invalid",
        403 => "refused_denied",
        408 => "timeout",
        409 => "refused_replayed",
        413 | 414 => "refused_too_large",
        429 => "refused_too_many_pending",
        503 => "database_unavailable",
        s if s >= 500 => "error",
        _ => "refused_other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_embedded_metric_format_with_its_dimensions() {
        let r = record(
            "callback",
            &[("Outcome", "saved")],
            &[
                ("CodesSaved", 1.0, "Count"),
                ("CallbackLatency", 2.5, "Milliseconds"),
            ],
            1_700_000_000_000,
        );
        let aws = &r["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000_i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["Function"], ["Function", "Outcome"]])
        );
        assert_eq!(
            directive["Metrics"][1],
            json!({"Name": "CallbackLatency", "Unit": "Milliseconds"})
        );
        assert_eq!(
            (r["Function"].as_str(), r["Outcome"].as_str()),
            (Some("callback"), Some("saved"))
        );
        assert_eq!(r["CodesSaved"], 1.0);
        // Every metric named in the directive has a value at the root, as EMF requires.
        for m in directive["Metrics"].as_array().expect("metrics") {
            assert!(r[m["Name"].as_str().expect("name")].is_number());
        }
    }

    #[test]
    fn outcomes_are_fixed_names() {
        assert_eq!(callback_outcome(200), "saved");
        assert_eq!(callback_outcome(409), "refused_replayed");
        assert_eq!(callback_outcome(503), "database_unavailable");
        assert_eq!(callback_outcome(502), "error");
    }
}
