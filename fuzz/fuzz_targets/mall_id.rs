//! `MallId`: whatever parses is a mall id that round-trips and can never name another host in
//! the default base URL (no SSRF through `https://{mall_id}.cafe24api.com`).
#![no_main]

use cafe24_core::base_url::BaseUrlTemplate;
use cafe24_core::MallId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(mall) = MallId::parse(&text) else {
        return;
    };
    assert_eq!(MallId::parse(mall.as_str()).ok().as_ref(), Some(&mall));
    let base = BaseUrlTemplate::default().for_mall(&mall);
    let url = url::Url::parse(&base).expect("a URL");
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host_str(), Some(format!("{}.cafe24api.com", mall.as_str()).as_str()));
    assert!(url.username().is_empty() && url.password().is_none() && url.port().is_none());
    assert!(matches!(url.path(), "" | "/"), "{base}");
});
