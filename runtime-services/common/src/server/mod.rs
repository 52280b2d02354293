//! The services' HTTP server: one accept loop for queue, ticket and payment,
//! with the limits a public server needs and `axum::serve` does not give.
//!
//! `axum::serve` reads headers for as long as a client cares to send them
//! (slowloris: a few hundred half-open requests hold as many tasks and file
//! descriptors forever), takes every connection the kernel hands it, and
//! leaves request duration and body size to each handler. Here:
//!
//! | limit | flag / env | default | what the client sees |
//! |---|---|---|---|
//! | header read | `URR_HEADER_READ_TIMEOUT_SECONDS` | 10 s | the connection is closed (no request yet, so no answer) |
//! | request | `URR_REQUEST_TIMEOUT_SECONDS` | 30 s | 408 `request-timeout` problem |
//! | body | `URR_BODY_LIMIT_BYTES` | 1 MiB | 413 `body-too-large` problem |
//! | connections | `URR_MAX_CONNECTIONS` | 4096 | waits in the listen backlog |
//!
//! The header-read timer also runs while an HTTP/1 keep-alive connection
//! waits for its next request, so it is the idle timeout of pooled
//! connections too (hyper has no separate one). It must stay above
//! [`crate::http_client::POOL_IDLE_TIMEOUT`], the time our own clients keep
//! an idle connection, or they would reuse connections as they close.
//!
//! Only HTTP/1.1 is served: nothing in front of the services (CloudFront,
//! the ALB, HAProxy, the payment service's client) speaks cleartext HTTP/2
//! to them, and hyper's HTTP/2 server has no header-read timeout.
//!
//! [`limits`] holds the per-request layers, [`origin`] the CloudFront origin
//! check; [`serve`] applies both. [`split`] runs a service's public and
//! internal routes on two listeners ([`serve_split`]).

pub mod limits;
pub mod origin;
pub mod split;

pub use split::{Routers, serve_split};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long the accept loop pauses after a failed `accept` (typically
/// `EMFILE`): retrying at once would spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server flags, `#[command(flatten)]` into each service's config.
#[derive(Clone, clap::Args)]
pub struct ServerArgs {
    /// Seconds a client has to send a request's headers (and an idle
    /// keep-alive connection stays open); then the connection is closed.
    #[arg(long, env = "URR_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_read_timeout_seconds: u64,
    /// Seconds from a request's headers to its response (body upload
    /// included); then 408.
    #[arg(long, env = "URR_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Largest request body accepted, in bytes; a larger one gets 413.
    #[arg(long, env = "URR_BODY_LIMIT_BYTES", default_value_t = limits::DEFAULT_BODY_LIMIT)]
    pub body_limit_bytes: usize,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "URR_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// When set, public routes require `X-URR-Origin-Verify: <this>` (the
    /// header CloudFront adds to origin requests); see [`origin`].
    #[arg(long, env = "URR_ORIGIN_SECRET", hide_env_values = true)]
    pub origin_secret: Option<String>,
    /// Address of the internal listener (`/internal/*`, `/metrics`, the
    /// probes); see [`split`].
    #[arg(long, env = "URR_INTERNAL_LISTEN", default_value = split::DEFAULT_INTERNAL_LISTEN)]
    pub internal_listen: SocketAddr,
}

/// By hand: the origin secret must not reach a log through `{args:?}`.
impl std::fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerArgs")
            .field(
                "header_read_timeout_seconds",
                &self.header_read_timeout_seconds,
            )
            .field("request_timeout_seconds", &self.request_timeout_seconds)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("max_connections", &self.max_connections)
            .field("origin_secret", &self.origin_secret.as_ref().map(|_| ".."))
            .field("internal_listen", &self.internal_listen)
            .finish()
    }
}

/// What [`ServerArgs`] say, in the units the server uses (tests build it
/// directly, with sub-second timeouts).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub body_limit: usize,
    pub max_connections: usize,
    pub origin: Option<origin::OriginSecret>,
}

/// Why the settings cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error(
        "URR_HEADER_READ_TIMEOUT_SECONDS is {seconds}: it must be above {} s, the time URR's clients keep an idle connection (a shorter one closes connections they are about to reuse)",
        crate::http_client::POOL_IDLE_TIMEOUT.as_secs()
    )]
    HeaderReadUndercutsClients { seconds: u64 },
    #[error(transparent)]
    Origin(#[from] origin::OriginSecretError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

impl ServerArgs {
    /// The settings, or which flag is unusable. A zero would make a timeout
    /// refuse everything or a limit admit nothing.
    pub fn settings(&self) -> Result<ServerSettings, ServerError> {
        let positive = |value: u64, name: &'static str| {
            if value == 0 {
                Err(ServerError::Zero(name))
            } else {
                Ok(value)
            }
        };
        let header_read_timeout = Duration::from_secs(positive(
            self.header_read_timeout_seconds,
            "URR_HEADER_READ_TIMEOUT_SECONDS",
        )?);
        if header_read_timeout <= crate::http_client::POOL_IDLE_TIMEOUT {
            return Err(ServerError::HeaderReadUndercutsClients {
                seconds: self.header_read_timeout_seconds,
            });
        }
        Ok(ServerSettings {
            header_read_timeout,
            request_timeout: Duration::from_secs(positive(
                self.request_timeout_seconds,
                "URR_REQUEST_TIMEOUT_SECONDS",
            )?),
            body_limit: positive(self.body_limit_bytes as u64, "URR_BODY_LIMIT_BYTES")? as usize,
            max_connections: positive(self.max_connections as u64, "URR_MAX_CONNECTIONS")? as usize,
            origin: self
                .origin_secret
                .as_deref()
                .map(origin::OriginSecret::new)
                .transpose()?,
        })
    }
}

impl Default for ServerSettings {
    /// The flags' defaults, without an origin secret.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            body_limit: limits::DEFAULT_BODY_LIMIT,
            max_connections: 4096,
            origin: None,
        }
    }
}

/// Binds `address`, with an error that names it.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind { address, source })
}

/// The router with every per-request guard of `settings` around it: the
/// origin check, the request timeout and the body limit ([`limits`]).
pub fn guard(app: Router, settings: &ServerSettings) -> Router {
    let app = match &settings.origin {
        Some(secret) => origin::require(app, secret.clone()),
        None => app,
    };
    limits::apply(app, settings)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (at most one request timeout).
///
/// Every request carries `ConnectInfo<SocketAddr>` of its peer, as
/// `into_make_service_with_connect_info` gives it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    accept_loop(listener, guard(app, settings), settings, shutdown).await;
}

/// The accept loop of one listener, serving `app` as it is (the caller has
/// put the guards around it): its own connection slots, the header-read
/// timeout, the drain on `shutdown`.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // The permit is taken before `accept`: at the limit, new connections
        // stay in the kernel's backlog instead of costing a task each.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; nothing left to serve with
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses: without it Nagle holds the last segment for the ACK.
        let _ = stream.set_nodelay(true);
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            // Errors are the client's doing (reset, header timeout, garbage).
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(settings.request_timeout, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; exiting anyway");
    }
}
