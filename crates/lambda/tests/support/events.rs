//! API Gateway and EventBridge events as Lambda delivers them (trimmed to the fields present in
//! AWS's samples that matter here).

#![allow(dead_code)]

use serde_json::{json, Map, Value};

/// A REST API (payload v1) `GET path` with these query parameters, stage `Prod`.
pub fn rest_get(path: &str, query: &[(&str, &str)]) -> Value {
    let single: Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let multi: Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!([v])))
        .collect();
    let params = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    json!({
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": {
            "Accept": "application/json",
            "Host": "abc123.execute-api.ap-northeast-2.amazonaws.com",
            "User-Agent": "Mozilla/5.0",
            "X-Forwarded-For": "192.0.2.10",
            "X-Forwarded-Proto": "https"
        },
        "multiValueHeaders": {
            "Accept": ["application/json"],
            "Host": ["abc123.execute-api.ap-northeast-2.amazonaws.com"]
        },
        "queryStringParameters": params(single),
        "multiValueQueryStringParameters": params(multi),
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.ap-northeast-2.amazonaws.com",
            "httpMethod": "GET",
            "identity": { "sourceIp": "192.0.2.10", "userAgent": "Mozilla/5.0" },
            "path": format!("/Prod{path}"),
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1_767_225_600_000_i64,
            "resourceId": "123456",
            "resourcePath": path,
            "stage": "Prod"
        },
        "body": null,
        "isBase64Encoded": false
    })
}

/// An HTTP API (payload v2) `GET path?query`, default stage.
pub fn http_api_get(path: &str, query: &[(&str, &str)]) -> Value {
    let raw_query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().copied())
        .finish();
    let params: Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": format!("GET {path}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {
            "accept": "application/json",
            "host": "abc123.execute-api.ap-northeast-2.amazonaws.com",
            "user-agent": "Mozilla/5.0",
            "x-forwarded-for": "192.0.2.10",
            "x-forwarded-proto": "https"
        },
        "queryStringParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.ap-northeast-2.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "Mozilla/5.0"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": format!("GET {path}"),
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1_767_225_600_000_i64
        },
        "isBase64Encoded": false
    })
}

/// An EventBridge scheduled event.
pub fn scheduled() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "ap-northeast-2",
        "resources": ["arn:aws:events:ap-northeast-2:123456789012:rule/cafe24-exchange"],
        "detail": {}
    })
}

/// The status and the parsed JSON body of an API Gateway proxy response.
pub fn status_and_body(response: &Value) -> (u16, Value) {
    let status = response["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or_else(|| panic!("no statusCode in {response}"));
    let body = response["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or(Value::String(b.to_owned())))
        .unwrap_or(Value::Null);
    (status, body)
}
