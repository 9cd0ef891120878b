//! A stand-in for Cafe24 that misbehaves on purpose — ignores the paging cursor, sends absurd
//! rate-limit headers — for what the sandbox, a faithful Cafe24, never does. It records the
//! path and query of every request it receives.

use std::sync::{Arc, Mutex};

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Router;

pub struct Fake {
    /// `CAFE24_BASE_URL` pointing at the fake (`http://127.0.0.1:PORT/malls/{mall_id}`).
    pub base_url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    /// Every request received so far, as path and query.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Serves `answer(path_and_query, n)` for the `n`-th request (from 0) on a free loopback port.
pub async fn fake(answer: impl Fn(&str, usize) -> Response + Send + Sync + 'static) -> Fake {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = Arc::new(answer);
    let app = Router::new().fallback(move |uri: Uri| {
        let answer = answer.clone();
        let log = log.clone();
        async move {
            let target = uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
            let n = {
                let mut log = log.lock().expect("lock");
                log.push(target.clone());
                log.len() - 1
            };
            answer(&target, n)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fake {
        base_url: format!("http://{addr}/malls/{{mall_id}}"),
        seen,
    }
}

/// A `200` JSON answer.
pub fn json(body: serde_json::Value) -> Response {
    axum::Json(body).into_response()
}
