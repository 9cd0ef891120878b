//! `malls`: every installed mall with its status, scopes and token expiries.

use cafe24_core::settings::{DatabaseSettings, LogFormat, Source};
use cafe24_store::TokenRecord;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::args::MallsArgs;

pub async fn run(source: &Source, args: &MallsArgs) -> anyhow::Result<()> {
    let database = DatabaseSettings::load(source)?;
    cafe24_server::telemetry::init(LogFormat::load(source)?);
    let store = super::context::open_store(&database).await?;
    let rows = store.all_tokens().await?;
    let now = Utc::now();
    if args.json {
        let list: Vec<_> = rows.iter().map(as_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print_table(&rows, now);
    }
    store.close().await;
    Ok(())
}

fn as_json(r: &TokenRecord) -> serde_json::Value {
    json!({
        "mall_id": r.mall_id.as_str(),
        "status": r.status.as_str(),
        "shop_no": r.shop_no,
        "scopes": r.scopes,
        "access_expires_at": r.access_expires_at.to_rfc3339(),
        "refresh_expires_at": r.refresh_expires_at.to_rfc3339(),
        "last_refreshed_at": r.last_refreshed_at.map(|t| t.to_rfc3339()),
        "refresh_in_flight_since": r.refresh_started_at.map(|t| t.to_rfc3339()),
        "last_error": r.last_error,
        "key_id": r.key_id,
        "version": r.version,
    })
}

fn print_table(rows: &[TokenRecord], now: DateTime<Utc>) {
    if rows.is_empty() {
        println!("no malls installed");
        return;
    }
    let header = ["MALL", "STATUS", "ACCESS", "REFRESH", "SCOPES", "NOTE"];
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let note = match (&r.refresh_started_at, &r.last_error) {
                (Some(t), _) => format!("refresh in flight since {}", relative(*t, now)),
                (None, Some(e)) => e.chars().take(60).collect(),
                (None, None) => String::new(),
            };
            [
                r.mall_id.to_string(),
                r.status.as_str().to_owned(),
                relative(r.access_expires_at, now),
                relative(r.refresh_expires_at, now),
                r.scopes.join(","),
                note,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |cells: [&str; 6]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    print(header);
    for line in &lines {
        print(line.each_ref().map(String::as_str));
    }
}

/// "in 1h 59m", "13d 23h ago".
fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let magnitude = secs.unsigned_abs();
    let (d, h, m, s) = (
        magnitude / 86_400,
        magnitude % 86_400 / 3600,
        magnitude % 3600 / 60,
        magnitude % 60,
    );
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    };
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::relative;
    use chrono::{Duration, Utc};

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc::now();
        assert_eq!(relative(now + Duration::seconds(7140), now), "in 1h 59m");
        assert_eq!(
            relative(now - Duration::days(14) - Duration::hours(1), now),
            "14d 1h ago"
        );
        assert_eq!(relative(now + Duration::seconds(42), now), "in 42s");
    }
}
