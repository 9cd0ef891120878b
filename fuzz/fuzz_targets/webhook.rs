//! Webhook bodies and their MACs: any body parses or is refused without panicking; dedupe keys
//! are stable; a body signed with the key verifies and any other MAC does not.
#![no_main]

use cafe24_core::settings::{Source, WebhookSettings};
use cafe24_webhooks::payload::{dedupe_key, Delivery};
use cafe24_webhooks::verify::Verifier;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: &str = "fuzz-webhook-key-0123456789";

fuzz_target!(|data: &[u8]| {
    let _ = Delivery::parse(data);
    assert_eq!(dedupe_key(None, 90001, data), dedupe_key(None, 90001, data));
    assert_eq!(dedupe_key(Some("t-1"), 90001, data), dedupe_key(Some("t-1"), 90077, data));
    let settings = WebhookSettings::load(&Source::from_pairs([
        ("CAFE24_WEBHOOK_AUTH", "hmac-hex"),
        ("CAFE24_WEBHOOK_KEY", KEY),
    ]))
    .expect("settings");
    let verifier = Verifier::new(&settings);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(KEY.as_bytes()).expect("any key length");
    mac.update(data);
    let good: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let header = |value: String| move |_: &str| Some(value.clone());
    assert!(verifier.check(None, None, header(good.clone()), data).is_ok());
    let forged = String::from_utf8_lossy(data).chars().take(64).collect::<String>();
    if forged.trim() != good {
        assert!(verifier.check(None, None, header(forged), data).is_err());
    }
});
