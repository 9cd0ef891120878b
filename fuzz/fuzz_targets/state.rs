//! `SignedState` verify: any string is refused or accepted without panicking; a state this
//! signer issued for any valid mall verifies back to that mall, and one byte changed never does.
#![no_main]

use std::time::Duration;

use cafe24_core::secret::StateKey;
use cafe24_core::state::StateSigner;
use cafe24_core::MallId;
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signer = StateSigner::new(
        StateKey::new("fuzz-state-secret-0123456789abcdef0123"),
        Duration::from_secs(600),
    );
    let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("a valid instant");
    let text = String::from_utf8_lossy(data);
    let _ = signer.verify(&text, now);
    if let Ok(mall) = MallId::parse(&text) {
        let state = signer.issue(&mall, now);
        let verified = signer.verify(state.as_str(), now).expect("its own state verifies");
        assert_eq!(verified.mall_id, mall);
        let mut bytes = state.as_str().as_bytes().to_vec();
        let i = data.len() % bytes.len();
        bytes[i] ^= 0x01;
        if let Ok(tampered) = String::from_utf8(bytes) {
            assert!(signer.verify(&tampered, now).is_err(), "a changed byte never verifies");
        }
    }
});
