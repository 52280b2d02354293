#![forbid(unsafe_code)]
//! What the URR runtime services (`queue`, `ticket`, `payment`) share.
//!
//! * [`tokens`]: the three token kinds of DESIGN.md (user JWT, `urr-vwr-token`,
//!   `urr-entry-token`), each verified with constant-time comparison.
//! * [`policy`] and [`edge`]: the two contracts the operator publishes, the
//!   admission policy in Redis for the queue and the room's entry in the
//!   CloudFront KeyValueStore for the edge function.
//! * [`serving`]: the tier-1 serving counter, computed from parameters, never
//!   stored; the edge function computes the same formula.
//! * [`page_template`]: branded waiting pages, checked against the page's CSP
//!   and rendered (operator, queue and `urr-operator page-preview` alike).
//! * [`json_body`]: request bodies, a JSON object read into the route's type.
//! * [`openapi`]: what the services' OpenAPI documents share, and their drift check.
//! * [`problem`]: RFC 9457 problem responses, the only error body the services send.
//! * [`server`]: the HTTP server of every service, with its limits
//!   (header read, request time, body size, connections) and the origin check.
//! * [`service`]: the frame every service's `main` and routers share
//!   (start-up, probes, `/metrics`, serve, shutdown of background tasks).
//! * [`telemetry`], [`metrics`], [`shutdown`]: logs, Prometheus text, signals.
//! * [`trace`]: W3C `traceparent` validation, propagation and the request span.

pub mod admission;
pub mod contracts;
pub mod edge;
pub mod http_client;
pub mod json_body;
pub mod metrics;
pub mod openapi;
pub mod page_template;
pub mod policy;
pub mod problem;
pub mod server;
pub mod service;
pub mod serving;
pub mod shutdown;
pub mod telemetry;
pub mod tokens;
pub mod trace;

/// Installs ring as the process's TLS crypto provider, before the first
/// TLS connection (`rediss://`, PostgreSQL `sslmode=require`): the workspace
/// compiles rustls with two providers, and rustls then picks none by itself.
/// Idempotent; every service calls it first thing.
pub fn install_tls_provider() {
    // Err only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
