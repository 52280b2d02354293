//! Operator metrics and the `/metrics`, `/healthz`, `/readyz`, `/leader` endpoints.
//!
//! Readiness is not leadership. `/readyz` answers 200 on every replica whose
//! Kubernetes client works (its configuration loaded and the API server
//! answered the first Lease read), i.e. on every replica able to take over;
//! the standby included. Were the standby unready, a two-replica Deployment
//! could never finish a rolling update (the new standby never becomes ready,
//! so the rollout, and `helm upgrade --wait`, stall) and the
//! PodDisruptionBudget would never allow an eviction (one of two pods always
//! counts as unavailable). Nothing routes traffic to the operator's pods, so
//! a ready standby receives nothing it should not. Who leads is a separate
//! signal: the `urr_operator_leader` gauge (1 on the leader, 0 elsewhere) and
//! `/leader` (200 on the leader, 503 on a standby), for dashboards and
//! humans, never for a probe.

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
use prometheus_client::metrics::gauge::Gauge;
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
    /// 1 while this replica holds the Lease (or runs without election), else 0.
    pub leader_gauge: Gauge,
    /// Set once this replica's Kubernetes client works: able to serve, and to
    /// take over when the leader goes. Not leadership (see the module docs).
    ready: AtomicBool,
    /// Set while this replica leads.
    leading: AtomicBool,
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
        let leader_gauge = Gauge::default();
        registry.register(
            "leader",
            "1 on the replica that holds the leader Lease and writes, 0 on a standby",
            leader_gauge.clone(),
        );
        Self {
            registry,
            reconciliations,
            reconcile_seconds,
            leader_gauge,
            ready: AtomicBool::new(false),
            leading: AtomicBool::new(false),
        }
    }

    /// The client works: this replica can serve and take over.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// This replica leads (true) or follows (false).
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
        self.leader_gauge.set(i64::from(leading));
    }

    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
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

/// The endpoints' routes (separate from [`serve`] so tests call them in process).
pub fn router(metrics: Arc<OperatorMetrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(m): State<Arc<OperatorMetrics>>| async move {
                // Ready = able to serve and take over; a standby is ready too.
                if m.is_ready() {
                    (
                        StatusCode::OK,
                        if m.is_leading() {
                            "ready (leader)"
                        } else {
                            "ready (standby)"
                        },
                    )
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        )
        .route(
            "/leader",
            get(|State(m): State<Arc<OperatorMetrics>>| async move {
                if m.is_leading() {
                    (StatusCode::OK, "leader")
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
        .with_state(metrics)
}

/// Serves the endpoints until the process ends.
pub async fn serve(address: SocketAddr, metrics: Arc<OperatorMetrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    axum::serve(listener, router(metrics)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_path(metrics: &Arc<OperatorMetrics>, path: &str) -> (StatusCode, String) {
        let response = router(metrics.clone())
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_standby_is_ready_but_not_the_leader() {
        let metrics = Arc::new(OperatorMetrics::new());
        assert_eq!(
            get_path(&metrics, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get_path(&metrics, "/healthz").await.0, StatusCode::OK);

        // The client works, another replica holds the Lease: ready, standby.
        metrics.set_ready();
        metrics.set_leading(false);
        assert_eq!(
            get_path(&metrics, "/readyz").await,
            (StatusCode::OK, "ready (standby)".into())
        );
        assert_eq!(
            get_path(&metrics, "/leader").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(
            get_path(&metrics, "/metrics")
                .await
                .1
                .contains("urr_operator_leader 0")
        );

        // It takes over.
        metrics.set_leading(true);
        assert_eq!(
            get_path(&metrics, "/readyz").await,
            (StatusCode::OK, "ready (leader)".into())
        );
        assert_eq!(get_path(&metrics, "/leader").await.0, StatusCode::OK);
        assert!(
            get_path(&metrics, "/metrics")
                .await
                .1
                .contains("urr_operator_leader 1")
        );
    }
}
