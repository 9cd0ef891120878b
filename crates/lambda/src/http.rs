//! The `http` handler: the shared axum router behind `lambda_http`. API Gateway puts the stage
//! in the path (`/Prod/oauth/callback`) — `lambda_http` adds it for REST events and HTTP APIs
//! send it for named stages — so it is taken off before routing, and the router sees exactly
//! the paths `serve` answers.

use axum::Router;
use lambda_http::http::uri::{PathAndQuery, Uri};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::ServiceExt as _;

pub(crate) async fn run(router: Router) -> Result<(), lambda_runtime::Error> {
    let router = router.layer(axum::middleware::from_fn(observe_callback));
    lambda_http::run(router.map_request(without_stage)).await
}

/// The callback's metrics, as EMF on stdout: every call counted with its outcome, its latency,
/// codes saved or refused, errors. Nothing from the request itself is written.
async fn observe_callback(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.uri().path() != "/oauth/callback" {
        return next.run(request).await;
    }
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let saved = f64::from(u8::from(status == 200));
    crate::emf::emit(
        "callback",
        &[("Outcome", crate::emf::callback_outcome(status))],
        &[
            ("CallbackRequests", 1.0, "Count"),
            (
                "CallbackErrors",
                f64::from(u8::from(status >= 500)),
                "Count",
            ),
            ("CodesSaved", saved, "Count"),
            ("CodesRefused", 1.0 - saved, "Count"),
            (
                "CallbackLatency",
                started.elapsed().as_secs_f64() * 1000.0,
                "Milliseconds",
            ),
        ],
    );
    response
}

/// The request with its path as the API defines it, without the stage.
fn without_stage(mut request: Request) -> Request {
    let path = match request.request_context_ref() {
        // The REST event's `path` never holds the stage; lambda_http kept it as the raw path.
        Some(RequestContext::ApiGatewayV1(_)) => request.raw_http_path().to_owned(),
        Some(RequestContext::ApiGatewayV2(ctx)) => match ctx.stage.as_deref() {
            Some(stage) if stage != "$default" => {
                let prefix = format!("/{stage}");
                match request.uri().path().strip_prefix(&prefix) {
                    Some(rest) if rest.starts_with('/') => rest.to_owned(),
                    _ => return request,
                }
            }
            _ => return request,
        },
        _ => return request,
    };
    if path.is_empty() || path == request.uri().path() {
        return request;
    }
    let target = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = request.uri().clone().into_parts();
    let Ok(path_and_query) = target.parse::<PathAndQuery>() else {
        return request;
    };
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> Request {
        let text = json.to_string();
        lambda_http::request::from_str(&text).expect("event")
    }

    #[test]
    fn rest_stage_is_removed_and_query_kept() {
        let request = without_stage(event(serde_json::json!({
            "resource": "/oauth/callback", "path": "/oauth/callback", "httpMethod": "GET",
            "headers": {"Host": "abc.execute-api.us-east-1.amazonaws.com"},
            "queryStringParameters": {"code": "c1"},
            "requestContext": {"stage": "Prod", "httpMethod": "GET", "path": "/Prod/oauth/callback",
                               "resourcePath": "/oauth/callback", "accountId": "1", "apiId": "abc",
                               "requestId": "r", "identity": {}},
            "isBase64Encoded": false
        })));
        assert_eq!(request.uri().path(), "/oauth/callback");
        assert_eq!(request.uri().query(), Some("code=c1"));
    }

    #[test]
    fn http_api_named_stage_is_removed() {
        let request = without_stage(event(serde_json::json!({
            "version": "2.0", "routeKey": "GET /oauth/callback", "rawPath": "/live/oauth/callback",
            "rawQueryString": "code=c1&state=s", "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com"},
            "requestContext": {"stage": "live", "http": {"method": "GET", "path": "/live/oauth/callback",
                               "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "t"},
                               "accountId": "1", "apiId": "abc", "requestId": "r", "time": "x", "timeEpoch": 0,
                               "domainName": "abc.execute-api.us-east-1.amazonaws.com"},
            "isBase64Encoded": false
        })));
        assert_eq!(request.uri().path(), "/oauth/callback");
        assert_eq!(request.uri().query(), Some("code=c1&state=s"));
    }
}
