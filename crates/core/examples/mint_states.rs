//! Prints `N` callback paths with valid, distinct signed states, for load tests:
//! `EXPECTED_STATE_SECRET=… cargo run --release -p cafe24-core --example mint_states -- 100000 benchmall [MALLS]`
//! With `MALLS`, the states name malls `{MALL_ID}0` … `{MALL_ID}{MALLS-1}` in turn (installs of
//! many malls, as in production: one mall's pending codes are capped).

use std::io::Write;
use std::time::Duration;

use cafe24_core::secret::StateKey;
use cafe24_core::{MallId, StateSigner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .ok_or("usage: mint_states COUNT MALL_ID")?
        .parse()?;
    let prefix = args
        .next()
        .ok_or("usage: mint_states COUNT MALL_ID [MALLS]")?;
    let malls = match args.next() {
        Some(n) => (0..n.parse::<usize>()?)
            .map(|i| MallId::parse(&format!("{prefix}{i}")))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![MallId::parse(&prefix)?],
    };
    if malls.is_empty() {
        return Err("MALLS must be at least 1".into());
    }
    let key = std::env::var("EXPECTED_STATE_SECRET")?;
    let signer = StateSigner::new(StateKey::new(key), Duration::from_secs(3600));
    let now = chrono::Utc::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let state = signer.issue(&malls[i % malls.len()], now);
        let encoded: String = form_urlencoded::byte_serialize(state.as_str().as_bytes()).collect();
        writeln!(out, "/oauth/callback?code=bench-{i}&state={encoded}")?;
    }
    out.flush()?;
    Ok(())
}
