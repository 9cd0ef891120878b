use super::*;

const STATE_SECRET: &str = "0123456789abcdef0123456789abcdef";

fn complete() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CAFE24_CLIENT_ID", "client-1"),
        ("CAFE24_CLIENT_SECRET", "very-secret-client-secret"),
        (
            "CAFE24_REDIRECT_URI",
            "https://app.example.com/oauth/callback",
        ),
        ("CAFE24_SCOPES", "mall.read_product,mall.read_store"),
        ("EXPECTED_STATE_SECRET", STATE_SECRET),
    ]
}

fn without(name: &str) -> Source {
    Source::from_pairs(complete().into_iter().filter(|(k, _)| *k != name))
}

fn with(name: &'static str, value: &'static str) -> Source {
    let mut pairs = complete();
    pairs.retain(|(k, _)| *k != name);
    pairs.push((name, value));
    Source::from_pairs(pairs)
}

fn failing_variable(src: &Source) -> Option<String> {
    Settings::load(src).err().map(|e| e.variable().to_owned())
}

#[test]
fn a_complete_environment_loads_with_defaults() {
    let s = Settings::load(&Source::from_pairs(complete())).expect("load");
    assert_eq!(s.app.base_url.as_str(), "https://{mall_id}.cafe24api.com");
    assert_eq!(s.state.ttl, Duration::from_secs(600));
    assert_eq!(s.http.listen_addr.to_string(), "127.0.0.1:8080");
    assert!(!s.database.is_postgres());
    assert!(s.encryption_keys.is_none());
}

#[test]
fn each_missing_required_variable_is_named() {
    for (name, _) in complete() {
        assert_eq!(failing_variable(&without(name)).as_deref(), Some(name));
    }
}

#[test]
fn malformed_values_are_named() {
    let cases = [
        ("CAFE24_BASE_URL", "http://{mall_id}.cafe24api.com"),
        ("CAFE24_BASE_URL", "https://fixed.example.com"),
        ("CAFE24_REDIRECT_URI", "not a url"),
        ("CAFE24_REDIRECT_URI", "http://app.example.com/cb"),
        ("CAFE24_SCOPES", "read everything"),
        ("EXPECTED_STATE_SECRET", "short"),
        ("TOKEN_ENCRYPTION_KEYS", "k1:tooshort"),
        ("LISTEN_ADDR", "everywhere"),
        ("CAFE24_STATE_TTL_SECS", "0"),
        ("CAFE24_LAUNCH_HMAC_REQUIRED", "maybe"),
        ("CAFE24_API_VERSION", "latest"),
        ("CAFE24_CLIENT_ID", "has space"),
        ("HTTP_REQUEST_TIMEOUT_SECS", "-1"),
    ];
    for (name, value) in cases {
        assert_eq!(
            failing_variable(&with(name, value)).as_deref(),
            Some(name),
            "{name}={value}"
        );
    }
}

#[test]
fn debug_of_settings_shows_no_secret() {
    let keys = generate_key_entry("k1");
    let mut pairs: Vec<(&str, String)> = complete()
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
    pairs.push(("TOKEN_ENCRYPTION_KEYS", keys.clone()));
    pairs.push((
        "DATABASE_URL",
        "postgres://app:db-password-42@localhost/app".into(),
    ));
    let s = Settings::load(&Source::from_pairs(pairs)).expect("load");
    let shown = format!("{s:?}");
    let key_material = keys
        .split_once(':')
        .map(|(_, k)| k.to_owned())
        .expect("key");
    for secret in [
        "very-secret-client-secret",
        STATE_SECRET,
        "db-password-42",
        key_material.as_str(),
    ] {
        assert!(!shown.contains(secret), "Debug leaks {secret}");
    }
    assert!(shown.contains("client-1"), "non-secret values stay visible");
}
