//! The public and internal listeners over real TCP: each serves only its
//! own routes (the other's are `not-found` problems), the origin secret
//! guards the public one only, and one shutdown closes both.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use urr_service_common::server::origin::{HEADER, OriginSecret};
use urr_service_common::server::{self, Routers, ServerSettings};

const GENEROUS: Duration = Duration::from_secs(20);
const SECRET: &str = "origin-secret-origin-secret-0123456789";

fn routers() -> Routers {
    Routers::new(
        (),
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ready" })),
        Router::new().route("/v1/events/{event}", get(|| async { "event" })),
        Router::new()
            .route("/internal/stats", get(|| async { "stats" }))
            .route("/metrics", get(|| async { "# EOF" })),
    )
}

struct Running {
    public: SocketAddr,
    internal: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<()>,
}

async fn start(settings: ServerSettings) -> Running {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let public = server::bind(loopback).await.expect("bind public");
    let internal = server::bind(loopback).await.expect("bind internal");
    let (public_address, internal_address) = (
        public.local_addr().expect("address"),
        internal.local_addr().expect("address"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server::serve_split(public, internal, routers(), &settings, async {
            let _ = stopped.await;
        })
        .await;
    });
    Running {
        public: public_address,
        internal: internal_address,
        stop,
        serving,
    }
}

/// `GET path` on a fresh connection: the status code and the whole response.
async fn get_at(address: SocketAddr, path: &str, origin: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let header = origin.map_or(String::new(), |value| format!("{HEADER}: {value}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: urr\r\n{header}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(GENEROUS, stream.read_to_end(&mut response))
        .await
        .expect("answered in time")
        .expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response}"));
    (status, response)
}

fn is_not_found_problem(response: &str) -> bool {
    response.contains("application/problem+json")
        && response.contains("https://urr.dev/problems/not-found")
}

#[tokio::test]
async fn each_listener_serves_only_its_own_routes() {
    let running = start(ServerSettings::default()).await;
    for (path, body) in [
        ("/v1/events/aurora", "event"),
        ("/healthz", "ok"),
        ("/readyz", "ready"),
    ] {
        let (status, response) = get_at(running.public, path, None).await;
        assert_eq!(status, 200, "public {path}: {response}");
        assert!(response.ends_with(body), "public {path}: {response}");
    }
    for path in ["/internal/stats", "/metrics"] {
        let (status, response) = get_at(running.public, path, None).await;
        assert_eq!(status, 404, "public {path}: {response}");
        assert!(is_not_found_problem(&response), "public {path}: {response}");
    }
    for (path, body) in [
        ("/internal/stats", "stats"),
        ("/metrics", "# EOF"),
        ("/healthz", "ok"),
        ("/readyz", "ready"),
    ] {
        let (status, response) = get_at(running.internal, path, None).await;
        assert_eq!(status, 200, "internal {path}: {response}");
        assert!(response.ends_with(body), "internal {path}: {response}");
    }
    let (status, response) = get_at(running.internal, "/v1/events/aurora", None).await;
    assert_eq!(status, 404, "internal API route: {response}");
    assert!(is_not_found_problem(&response), "{response}");
}

#[tokio::test]
async fn the_origin_secret_guards_the_public_listener_only() {
    let running = start(ServerSettings {
        origin: Some(OriginSecret::new(SECRET).expect("long enough")),
        ..ServerSettings::default()
    })
    .await;
    assert_eq!(
        get_at(running.public, "/v1/events/aurora", None).await.0,
        403
    );
    assert_eq!(
        get_at(running.public, "/v1/events/aurora", Some(SECRET))
            .await
            .0,
        200
    );
    for path in ["/internal/stats", "/metrics", "/healthz"] {
        let (status, response) = get_at(running.internal, path, None).await;
        assert_eq!(
            status, 200,
            "internal {path} without the header: {response}"
        );
    }
}

#[tokio::test]
async fn one_shutdown_closes_both_listeners() {
    let running = start(ServerSettings::default()).await;
    assert_eq!(get_at(running.internal, "/healthz", None).await.0, 200);
    let _ = running.stop.send(());
    tokio::time::timeout(GENEROUS, running.serving)
        .await
        .expect("serve_split returned after the shutdown signal")
        .expect("no panic");
    for address in [running.public, running.internal] {
        assert!(
            TcpStream::connect(address).await.is_err(),
            "{address} still listening"
        );
    }
}

/// Request durations are recorded per declared route (never per raw path,
/// so ids do not make new series), on both listeners, misses included.
#[tokio::test]
async fn request_durations_are_recorded_by_route() {
    use tower::ServiceExt;
    let mut registry = prometheus_client::registry::Registry::with_prefix("urr_test");
    let metrics = urr_service_common::metrics::RequestMetrics::register(&mut registry);
    let routers = routers().measured(&metrics);
    for path in ["/v1/events/e-1", "/v1/events/e-2", "/nope"] {
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("request");
        routers
            .public
            .clone()
            .oneshot(request)
            .await
            .expect("answer");
    }
    let request = axum::http::Request::get("/internal/stats")
        .body(axum::body::Body::empty())
        .expect("request");
    routers
        .internal
        .clone()
        .oneshot(request)
        .await
        .expect("answer");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    let count = |labels: &str| {
        text.lines()
            .find(|line| {
                line.starts_with("urr_test_http_request_duration_seconds_count{")
                    && line.contains(labels)
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<u64>().ok())
    };
    assert_eq!(
        count(r#"route="/v1/events/{event}",status="2xx""#),
        Some(2),
        "{text}"
    );
    assert_eq!(
        count(r#"route="unmatched",status="4xx""#),
        Some(1),
        "{text}"
    );
    assert_eq!(
        count(r#"route="/internal/stats",status="2xx""#),
        Some(1),
        "{text}"
    );
    assert!(!text.contains("e-1"), "raw paths are not labels: {text}");
}
