//! The `X-Forwarded-For` walk: any chain gives a sender or none without panicking, and a
//! sender is always the peer or an address written in the chain.
#![no_main]

use std::net::IpAddr;

use cafe24_core::settings::{Source, WebhookSettings};
use cafe24_webhooks::verify::Verifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let settings = WebhookSettings::load(&Source::from_pairs([
        ("CAFE24_WEBHOOK_AUTH", "api-key"),
        ("CAFE24_WEBHOOK_KEY", "fuzz-webhook-key-0123456789"),
        ("CAFE24_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"),
        ("CAFE24_WEBHOOK_ALLOWED_SENDERS", "119.205.223.208/31"),
    ]))
    .expect("settings");
    let verifier = Verifier::new(&settings);
    let chain = String::from_utf8_lossy(data);
    let peer: IpAddr = "10.1.2.3".parse().expect("ip");
    if let Some(sender) = verifier.sender(Some(peer), Some(&chain)) {
        assert!(
            sender == peer || chain.split(',').any(|h| h.trim().parse::<IpAddr>().ok() == Some(sender)),
            "{sender} from {chain:?}"
        );
    }
});
