//! The target's stdout and stderr, searched for every secret the kit set and every code,
//! state and token it saw — including the tokens stored right now.

use sqlx::Row;

use crate::check::Outcome;
use crate::contract::crypto::TokenKind;
use crate::world::{lock, World};

/// Shorter values could match by chance.
const SHORTEST: usize = 12;

pub async fn nothing_secret_in_the_output(w: &World<'_>) -> Outcome {
    let mut needles: Vec<(String, String)> = w
        .secrets
        .all()
        .into_iter()
        .map(|(what, value)| (what.to_owned(), value))
        .collect();
    // The tokens stored now (the latest rotations), opened with the kit's key.
    // (A target without the table fails elsewhere; its logs are still searched here.)
    let rows = sqlx::query("SELECT mall_id, access_token, refresh_token FROM cafe24.tokens")
        .fetch_all(w.db)
        .await
        .unwrap_or_default();
    for row in rows {
        let mall: String = row.try_get(0)?;
        for (kind, column) in [(TokenKind::Access, 1), (TokenKind::Refresh, 2)] {
            let sealed: Vec<u8> = row.try_get(column)?;
            if let Ok(token) = w.secrets.key.open(&mall, kind, &sealed) {
                w.remember_token(&token);
            }
        }
    }
    {
        let seen = lock(&w.seen);
        for (what, values) in [
            ("a code", &seen.codes),
            ("a state", &seen.states),
            ("a token", &seen.tokens),
        ] {
            needles.extend(values.iter().map(|v| (what.to_owned(), v.clone())));
        }
    }
    needles.retain(|(_, v)| v.len() >= SHORTEST);
    let mut files = w.fleet_logs.clone();
    files.extend(lock(&w.extra_logs).iter().cloned());
    let mut leaks = Vec::new();
    let mut bytes = 0;
    for file in &files {
        let text = std::fs::read(file).unwrap_or_default();
        bytes += text.len();
        let text = String::from_utf8_lossy(&text);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (what, value) in &needles {
            if text.contains(value.as_str()) {
                leaks.push(format!("{what} in {name}"));
            }
        }
    }
    leaks.sort();
    leaks.dedup();
    crate::ensure!(
        leaks.is_empty(),
        "secret values appear in the output: {}",
        leaks.join(", ")
    );
    Ok(format!(
        "{} values searched in {} files ({} KiB)",
        needles.len(),
        files.len(),
        bytes / 1024
    ))
}
