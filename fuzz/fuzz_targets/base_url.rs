//! `CAFE24_BASE_URL`: any template is refused or accepted without panicking; an accepted one
//! builds a URL for every mall, https or plain http on loopback only.
#![no_main]

use cafe24_core::base_url::BaseUrlTemplate;
use cafe24_core::MallId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(template) = BaseUrlTemplate::parse(&text) else {
        return;
    };
    let mall = MallId::parse("shop1").expect("mall");
    let url = url::Url::parse(&template.for_mall(&mall)).expect("an accepted template gives a URL");
    match url.scheme() {
        "https" => {}
        "http" => assert!(
            matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
                || url.host_str().is_some_and(|h| h.starts_with("127.")),
            "plain http only on loopback: {url}"
        ),
        other => panic!("scheme {other}"),
    }
    let _ = template.endpoint(&mall, "/api/v2/oauth/token");
});
