//! `X-Api-Call-Limit` and the `X-Cafe24-*-Remain` headers: any values parse or are ignored
//! without panicking, and no value pauses a mall longer than the documented bound.
#![no_main]

use cafe24_client::{LimitReport, MAX_PAUSE};
use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let mut headers = HeaderMap::new();
    for name in ["x-api-call-limit", "x-cafe24-call-remain", "x-cafe24-time-remain", "retry-after"] {
        if let Some(Ok(value)) = parts.next().map(HeaderValue::from_str) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    let report = LimitReport::from_headers(&headers);
    if let Some(secs) = report.remain_secs {
        assert!(secs <= MAX_PAUSE.as_secs(), "{secs}");
    }
});
