//! Requests to the routers in-process, and what the answers are checked for.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;
use urr_queue::routers;

/// `request` on the public router (the listener behind the load balancer).
pub async fn send(
    state: &urr_queue::AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    answer(routers(state.clone()).public, request).await
}

/// `request` on the internal router (the in-cluster listener).
pub async fn send_internal(
    state: &urr_queue::AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    answer(routers(state.clone()).internal, request).await
}

async fn answer(
    router: axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = router.oneshot(request).await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

pub fn post(uri: &str, user: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post(uri);
    if let Some(token) = user {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_owned())).expect("request")
}

pub fn get(uri: &str, user: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(token) = user {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).expect("request")
}

pub fn assert_problem(headers: &axum::http::HeaderMap, body: &Value, slug: &str) {
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(
        body["type"],
        format!("https://urr.dev/problems/{slug}"),
        "{body}"
    );
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

/// `request` as if it came from `peer` (the socket address a listener sees).
pub fn with_peer(mut request: Request<Body>, peer: &str) -> Request<Body> {
    let address: std::net::SocketAddr = peer.parse().expect("peer address");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(address));
    request
}
