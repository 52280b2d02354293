//! The shared server over real TCP: a slow client loses its connection at
//! the header-read timeout while others are served, and an oversized body
//! gets a 413 problem. Timing assertions only bound from above, generously.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use urr_service_common::server::{self, ServerSettings};

/// Far above the 1 s header timeout of the tests, far below forever.
const GENEROUS: Duration = Duration::from_secs(20);

fn app() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/peer-port",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.port().to_string() },
            ),
        )
}

async fn start(settings: ServerSettings) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server::serve(listener, app(), &settings, async {
            let _ = stopped.await;
        })
        .await;
    });
    (address, stop)
}

/// One HTTP/1.1 request on a fresh connection; the whole response as text.
async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(GENEROUS, stream.read_to_end(&mut response))
        .await
        .expect("answered in time")
        .expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_half_sent_header_is_cut_off_while_other_clients_are_served() {
    let (address, _stop) = start(ServerSettings {
        header_read_timeout: Duration::from_secs(1),
        ..ServerSettings::default()
    })
    .await;
    let mut slow = TcpStream::connect(address).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: urr\r\nX-Slow: ")
        .await
        .expect("half a header");

    // Meanwhile a well-behaved client is answered.
    let answer = exchange(
        address,
        b"GET /healthz HTTP/1.1\r\nHost: urr\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The slow one is closed: EOF (or a reset), and no response to a request
    // it never finished.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(GENEROUS, slow.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the half-open request still holds its connection after {GENEROUS:?}"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "an unfinished request was answered"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_gets_a_413_problem_over_the_wire() {
    let (address, _stop) = start(ServerSettings {
        body_limit: 1024,
        ..ServerSettings::default()
    })
    .await;
    let body = vec![b'x'; 4096];
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: urr\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let answer = exchange(address, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(
        answer.contains("https://urr.dev/problems/body-too-large"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_connection_past_the_limit_waits_until_one_is_free() {
    let (address, _stop) = start(ServerSettings {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(1),
        ..ServerSettings::default()
    })
    .await;
    // The only slot, held by an idle connection until its header timeout.
    let mut holder = TcpStream::connect(address).await.expect("connect");
    let mut second = TcpStream::connect(address)
        .await
        .expect("connect (backlog)");
    second
        .write_all(b"GET /peer HTTP/1.1\r\nHost: urr\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut first_bytes = [0u8; 1];
    // Not served while the slot is taken...
    let early =
        tokio::time::timeout(Duration::from_millis(300), second.read(&mut first_bytes)).await;
    assert!(
        early.is_err(),
        "a second connection was served past a limit of 1"
    );
    // ...then served once the holder is cut off, with its peer address.
    let mut response = Vec::new();
    tokio::time::timeout(GENEROUS, second.read_to_end(&mut response))
        .await
        .expect("served once the slot is free")
        .expect("read");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("127.0.0.1"), "{response}");
    let mut rest = Vec::new();
    let _ = holder.read_to_end(&mut rest).await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server::serve(listener, app(), &ServerSettings::default(), async {
            let _ = stopped.await;
        })
        .await;
    });
    let answer = exchange(
        address,
        b"GET /healthz HTTP/1.1\r\nHost: urr\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = stop.send(());
    tokio::time::timeout(GENEROUS, serving)
        .await
        .expect("serve returned after the shutdown signal")
        .expect("no panic");
    assert!(
        TcpStream::connect(address).await.is_err(),
        "still listening"
    );
}

/// The client side of the idle-connection contract: a connection left idle
/// for `POOL_IDLE_TIMEOUT` is not reused (so it is never picked up as the
/// server closes it at its header-read timeout); a busy one is.
#[tokio::test]
async fn our_client_drops_an_idle_connection_before_the_server_would() {
    let (address, _stop) = start(ServerSettings {
        header_read_timeout: Duration::from_secs(60),
        ..ServerSettings::default()
    })
    .await;
    let client = urr_service_common::http_client::builder()
        .build()
        .expect("client");
    let port = async || {
        client
            .get(format!("http://{address}/peer-port"))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    };
    let first = port().await;
    assert_eq!(port().await, first, "a busy connection is reused");
    tokio::time::sleep(
        urr_service_common::http_client::POOL_IDLE_TIMEOUT + Duration::from_millis(700),
    )
    .await;
    assert_ne!(
        port().await,
        first,
        "an idle connection was kept past the pool's idle timeout"
    );
}

/// The server side: a header-read (idle) timeout at or under the clients'
/// pool idle time is refused at start-up, naming the variable.
#[test]
fn a_header_read_timeout_that_undercuts_the_clients_is_refused() {
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        server: server::ServerArgs,
    }
    let limit = urr_service_common::http_client::POOL_IDLE_TIMEOUT.as_secs();
    let refused = Args::parse_from(["t", "--header-read-timeout-seconds", &limit.to_string()])
        .server
        .settings()
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("URR_HEADER_READ_TIMEOUT_SECONDS"),
        "{refused}"
    );
    let accepted = Args::parse_from([
        "t",
        "--header-read-timeout-seconds",
        &(limit + 1).to_string(),
    ])
    .server
    .settings()
    .expect("accepted");
    assert_eq!(accepted.header_read_timeout, Duration::from_secs(limit + 1));
}
