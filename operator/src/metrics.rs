//! Operator metrics and the `/metrics`, `/healthz`, `/readyz` endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub controller: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug)]
pub struct OperatorMetrics {
    pub registry: Registry,
    pub reconciliations: Family<OutcomeLabels, Counter>,
    pub reconcile_seconds: Histogram,
    /// Set once this replica leads and its caches are running.
    pub ready: AtomicBool,
}

impl OperatorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("urr_operator");
        let reconciliations = Family::<OutcomeLabels, Counter>::default();
        let reconcile_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "reconciliations",
            "Reconciliations by controller and outcome (ok, invalid, error)",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_seconds",
            "Duration of one reconciliation",
            reconcile_seconds.clone(),
        );
        Self {
            registry,
            reconciliations,
            reconcile_seconds,
            ready: AtomicBool::new(false),
        }
    }

    pub fn count(&self, controller: &'static str, outcome: &'static str) {
        self.reconciliations
            .get_or_create(&OutcomeLabels {
                controller,
                outcome,
            })
            .inc();
    }
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves the endpoints until the process ends.
pub async fn serve(address: SocketAddr, metrics: Arc<OperatorMetrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(m): State<Arc<OperatorMetrics>>| async move {
                if m.ready.load(Ordering::Acquire) {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "standby")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(m): State<Arc<OperatorMetrics>>| async move {
                urr_service_common::metrics::render(&m.registry)
            }),
        )
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(address).await?;
    axum::serve(listener, app).await
}
