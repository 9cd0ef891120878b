//! Token responses: any body parses or fails without panicking; salvaging never loses a pair
//! the strict parse accepts; Cafe24's KST timestamps round-trip.
#![no_main]

use cafe24_core::oauth::{format_cafe24_instant, parse_cafe24_instant, TokenSet};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("a valid instant");
    let strict = TokenSet::parse(data);
    let salvaged = TokenSet::parse_salvaging(data, now);
    if let Ok(set) = &strict {
        let s = salvaged.as_ref().expect("a strict parse is also a salvaging one");
        assert_eq!(s.access_token.expose_secret(), set.access_token.expose_secret());
        assert_eq!(s.refresh_token.expose_secret(), set.refresh_token.expose_secret());
        assert!(s.incomplete.is_none());
    }
    if let Ok(set) = &salvaged {
        assert!(!set.access_token.expose_secret().is_empty());
        assert!(!set.refresh_token.expose_secret().is_empty());
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(at) = parse_cafe24_instant(&text) {
        let again = parse_cafe24_instant(&format_cafe24_instant(at)).expect("formatted parses");
        assert_eq!(again.timestamp_millis(), at.timestamp_millis());
    }
    if data.len() >= 8 {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&data[..8]);
        let millis = i64::from_le_bytes(raw) % 4_102_444_800_000; // before 2100
        if let Some(at) = Utc.timestamp_millis_opt(millis.abs()).single() {
            let back = parse_cafe24_instant(&format_cafe24_instant(at)).expect("round trip");
            assert_eq!(back, at);
        }
    }
});
