//! Content negotiation: a browser (`Accept: text/html`) gets the small page a response's
//! [`View`] describes; everything else (curl's `*/*`, `application/json`) gets the JSON.

use axum::extract::Request;
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::page::View;

pub async fn negotiate(request: Request, next: Next) -> Response {
    let wants_html = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_html);
    let mut response = next.run(request).await;
    if wants_html {
        if let Some(view) = response.extensions_mut().remove::<View>() {
            let (mut parts, _) = response.into_parts();
            parts.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            parts.headers.remove(CONTENT_LENGTH);
            return Response::from_parts(parts, view.render().into());
        }
    }
    response
}

/// `text/html` listed with a non-zero quality before or instead of JSON.
fn prefers_html(accept: &str) -> bool {
    let mut html = None;
    let mut json = None;
    for (i, item) in accept.split(',').enumerate() {
        let mut parts = item.split(';').map(str::trim);
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
        if refused {
            continue;
        }
        match kind.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.or(Some(i)),
            "application/json" => json = json.or(Some(i)),
            _ => {}
        }
    }
    match (html, json) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefers_html;

    #[test]
    fn browsers_get_html_and_clients_get_json() {
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html("application/json"));
        assert!(!prefers_html("application/json, text/html"));
        assert!(!prefers_html("text/html;q=0"));
    }
}
