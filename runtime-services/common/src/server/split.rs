//! Two listeners per service: the public one, reached through the load
//! balancer (and, with `URR_ORIGIN_SECRET`, only through CloudFront), and
//! the internal one (`URR_INTERNAL_LISTEN`, port 9090), which the Service
//! exposes in-cluster only and the NetworkPolicies open only to the
//! operator, Prometheus and (for the ticket service) the payment pods.
//!
//! | listener | routes | guards |
//! |---|---|---|
//! | public | the API, `/healthz`, `/readyz` | origin check, limits |
//! | internal | `/internal/*`, `/metrics`, `/healthz`, `/readyz` | limits |
//!
//! A separate port rather than a path filter on one port: a NetworkPolicy
//! can only tell ports apart, so only a port keeps `/internal/*` (confirm a
//! hold, read the figures) away from whatever can reach the API. The
//! probes are on both: the load balancer's health checks come to the
//! public port, the kubelet may use either. Each listener has its own
//! connection slots, so a flood of public connections cannot keep the
//! operator or Prometheus out.

use std::future::Future;

use axum::Router;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{ServerSettings, accept_loop, guard, limits};
use crate::problem::Problem;

/// The internal listener's address when `URR_INTERNAL_LISTEN` is unset.
pub const DEFAULT_INTERNAL_LISTEN: &str = "0.0.0.0:9090";

/// A service's routes, split by who may call them.
#[derive(Debug, Clone)]
pub struct Routers {
    /// Served on `URR_LISTEN`: the API and the probes.
    pub public: Router,
    /// Served on `URR_INTERNAL_LISTEN`: `/internal/*`, `/metrics` and the
    /// probes.
    pub internal: Router,
}

impl Routers {
    /// `public` and `internal`, each with `probes` merged in, the
    /// `not-found` problem for any other path and the request span, bound
    /// to `state`. A path of one router is a 404 on the other: routes are
    /// placed, not filtered, so a new internal route cannot leak to the
    /// public port by a forgotten prefix.
    pub fn new<S>(state: S, probes: Router<S>, public: Router<S>, internal: Router<S>) -> Self
    where
        S: Clone + Send + Sync + 'static,
    {
        let finish = |routes: Router<S>| {
            routes
                .merge(probes.clone())
                .fallback(not_found)
                .layer(
                    tower_http::trace::TraceLayer::new_for_http()
                        .make_span_with(crate::trace::http_span),
                )
                .with_state(state.clone())
        };
        Self {
            public: finish(public),
            internal: finish(internal),
        }
    }

    /// Both routers with each request's duration recorded in `metrics`, by
    /// matched route.
    pub fn measured(self, metrics: &crate::metrics::RequestMetrics) -> Self {
        let layer = || {
            axum::middleware::from_fn_with_state(
                metrics.clone(),
                crate::metrics::RequestMetrics::record,
            )
        };
        Self {
            public: self.public.layer(layer()),
            internal: self.internal.layer(layer()),
        }
    }
}

async fn not_found() -> axum::response::Response {
    Problem::not_found("not-found", "Not found", "no such route").into_response()
}

/// Serves `routers.public` on `public` (origin check and limits) and
/// `routers.internal` on `internal` (limits only: in-cluster callers never
/// come through CloudFront) until `shutdown` resolves; then both stop
/// accepting and drain together, and this returns when both are done.
pub async fn serve_split(
    public: TcpListener,
    internal: TcpListener,
    routers: Routers,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    // One signal for both loops: a service that stopped taking API traffic
    // but kept answering probes would look healthy while it drains.
    let (stop, stopped) = watch::channel(());
    let wait = |mut stopped: watch::Receiver<()>| async move {
        // An error means the sender is gone, which is a stop as well.
        let _ = stopped.changed().await;
    };
    tokio::join!(
        accept_loop(
            public,
            guard(routers.public, settings),
            settings,
            wait(stopped.clone())
        ),
        accept_loop(
            internal,
            limits::apply(routers.internal, settings),
            settings,
            wait(stopped)
        ),
        async move {
            shutdown.await;
            let _ = stop.send(());
        },
    );
}
