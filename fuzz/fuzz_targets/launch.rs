//! Launch query verification: any raw query is refused or accepted without panicking; a query
//! signed as Cafe24 signs it verifies, with any extra parameter the fuzzer adds.
#![no_main]

use std::time::Duration;

use cafe24_core::launch::{sign_query, verify, MAX_LAUNCH_QUERY_LEN};
use cafe24_core::secret::ClientSecret;
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secret = ClientSecret::new("fuzz-client-secret");
    let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("a valid instant");
    let window = Duration::from_secs(600);
    let text = String::from_utf8_lossy(data);
    let _ = verify(&text, &secret, now, window);
    let extra: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("user_name", &text)
        .finish();
    let query = format!("is_multi_shop=F&lang=ko_KR&mall_id=shop1&shop_no=1&timestamp=1700000000&{extra}");
    let signed = sign_query(&query, &secret);
    if signed.len() <= MAX_LAUNCH_QUERY_LEN {
        assert!(verify(&signed, &secret, now, window).is_ok(), "{signed}");
    }
    assert!(verify(&signed, &ClientSecret::new("another-secret"), now, window).is_err());
});
