//! `GET /install`: the App URL Cafe24 opens with a signed launch query.

use std::collections::BTreeSet;

use crate::check::{Context, Outcome};
use crate::contract::{launch, state};
use crate::env::{LAUNCH_WINDOW_SECS, SCOPES};
use crate::world::World;

pub async fn valid_launch_redirects_to_authorize(w: &World<'_>) -> Outcome {
    let mall = w.mall("install");
    let mut states = BTreeSet::new();
    for server in &w.servers {
        let url = w.install_redirect(server, &mall).await?;
        let expected = format!("{}/api/v2/oauth/authorize", w.sandbox.mall_base_url(&mall));
        let got = format!("{}{}", &url[..url::Position::BeforePath], url.path());
        crate::ensure!(
            got == expected,
            "/install redirected to {got}, expected {expected}"
        );
        let param = |name: &str| {
            let mut values = url
                .query_pairs()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned());
            (values.next(), values.next())
        };
        for (name, want) in [
            ("response_type", "code"),
            ("client_id", w.secrets.client_id.as_str()),
            ("redirect_uri", w.redirect_uri.as_str()),
        ] {
            let (value, again) = param(name);
            crate::ensure!(
                value.as_deref() == Some(want) && again.is_none(),
                "the authorize URL has {name}={value:?}, expected exactly one {want:?}"
            );
        }
        let scopes: BTreeSet<String> = param("scope")
            .0
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let wanted: BTreeSet<String> = SCOPES.split(',').map(str::to_owned).collect();
        crate::ensure!(
            scopes == wanted,
            "the authorize URL asks for scopes {scopes:?}, expected {wanted:?}"
        );
        let raw = param("state").0.context("the authorize URL has no state")?;
        let claims = state::verify(&w.secrets.state_secret, &raw).context(
            "the state is not v1.{mall_id}.{issued_at}.{nonce}.{mac} with an HMAC-SHA256 under EXPECTED_STATE_SECRET",
        )?;
        crate::ensure!(
            claims.mall_id == mall,
            "the state names mall {:?}, expected {mall:?}",
            claims.mall_id
        );
        let skew = (chrono::Utc::now().timestamp() - claims.issued_at).abs();
        crate::ensure!(
            skew <= 60,
            "the state says it was issued {skew} s away from now"
        );
        w.remember_state(&raw);
        crate::ensure!(states.insert(raw), "two installs were given the same state");
    }
    Ok(format!(
        "{} process(es): 302 to authorize, state verified by the kit",
        w.servers.len()
    ))
}

pub async fn bad_launch_hmac_is_403(w: &World<'_>) -> Outcome {
    let mall = w.mall("launch");
    let secret = &w.secrets.client_secret;
    let now = chrono::Utc::now().timestamp();
    let fresh = launch::query(&mall, now);
    let signed = launch::sign(&fresh, secret);
    let (_, tag) = signed
        .rsplit_once('&')
        .context("a signed query has an hmac")?;
    let swapped = fresh.replacen(
        "is_multi_shop=F&lang=ko_KR",
        "lang=ko_KR&is_multi_shop=F",
        1,
    );
    let variants = [
        ("no hmac (the launch hmac is required)", fresh.clone()),
        (
            "a tampered parameter",
            signed.replacen("user_type=P", "user_type=S", 1),
        ),
        (
            "parameters reordered after signing",
            format!("{swapped}&{tag}"),
        ),
        (
            "a timestamp older than the window",
            launch::sign(&launch::query(&mall, now - 2 * LAUNCH_WINDOW_SECS), secret),
        ),
        (
            "a timestamp beyond the window ahead",
            launch::sign(&launch::query(&mall, now + 2 * LAUNCH_WINDOW_SECS), secret),
        ),
        (
            "signed with another secret",
            launch::sign(&fresh, "not-the-client-secret"),
        ),
        (
            "an hmac that is not base64",
            format!("{fresh}&hmac=%25%25%25"),
        ),
        (
            "a second hmac before the signed part",
            format!("hmac=AAAA&{signed}"),
        ),
    ];
    for (i, (what, query)) in variants.iter().enumerate() {
        let answer = w.install_answer(w.server(i), query).await?;
        crate::ensure!(
            answer.status == 403 && answer.header("location").is_none(),
            "a launch with {what} answered {}, expected 403 without a redirect",
            answer.summary()
        );
    }
    let answer = w.install_answer(w.server(0), &signed).await?;
    crate::ensure!(
        answer.status == 302,
        "the same launch correctly signed answered {}",
        answer.summary()
    );
    Ok(format!("{} forged launches refused", variants.len()))
}

pub async fn hostile_mall_id_is_400(w: &World<'_>) -> Outcome {
    let now = chrono::Utc::now().timestamp();
    let long = "a".repeat(300);
    // Raw query values: what reaches the server byte for byte (the hmac is over them).
    let hostile = [
        ("evil.com/", "evil.com%2F"),
        ("a@b", "a%40b"),
        ("..", ".."),
        ("%2e (a dot, encoded)", "%2e"),
        ("%2e (literally)", "%252e"),
        ("300 characters", long.as_str()),
        ("uppercase with a dot", "Shop.Example"),
        ("empty", ""),
        ("a newline", "shop%0Aevil"),
        ("a port", "shop%3A80"),
        ("a fragment", "shop%23x"),
        ("an encoded international name (xn--)", "xn---"),
        ("'--' as third and fourth characters", "ab--cd"),
    ];
    for (i, (what, raw)) in hostile.iter().enumerate() {
        let query = format!(
            "is_multi_shop=F&lang=ko_KR&mall_id={raw}&nation=KR&shop_no=1&timestamp={now}&user_id=conformance&user_name=Conformance+Kit&user_type=P"
        );
        let signed = launch::sign(&query, &w.secrets.client_secret);
        let answer = w.install_answer(w.server(i), &signed).await?;
        crate::ensure!(
            answer.status == 400 && answer.header("location").is_none(),
            "a correctly signed launch with mall_id {what} answered {}, expected 400 without a redirect",
            answer.summary()
        );
    }
    Ok(format!("{} hostile mall ids refused", hostile.len()))
}
