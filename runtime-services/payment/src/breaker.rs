//! The circuit breaker of the synchronous path to the ticket service.
//!
//! The state machine comes from `tower-resilience-circuitbreaker` (a
//! maintained tower 0.5 layer): money code should not carry a hand-rolled
//! concurrency primitive where a tested one exists. This module only fixes
//! how the payment service uses it:
//!
//! * **Consecutive failures** trip it (not a failure *rate*): the confirm path
//!   sees a few calls per second at most, too few for a meaningful window.
//! * **Closed**: calls pass. **Open**: calls fail at once, no request leaves,
//!   for `open_for`. **Half-open**: exactly one probe passes; its success
//!   closes the circuit, its failure opens it again.
//! * Only an `Err` counts as a failure. The ticket service's refusals (409
//!   hold expired, 422 amount mismatch) are *answers* (`Ok`), so a wave of
//!   expired holds never opens the circuit.
//!
//! The crate measures the open period with `std::time::Instant`, so tests use
//! short real durations rather than tokio's paused clock.

use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tower_resilience_circuitbreaker::{
    CircuitBreakerConfigError, CircuitBreakerLayer, DefaultClassifier,
};
pub use tower_resilience_circuitbreaker::{CircuitBreakerError, CircuitState};

/// A service behind the breaker.
pub type Breaker<S> = tower_resilience_circuitbreaker::CircuitBreaker<S, DefaultClassifier>;

/// What the breaker turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open: the ticket service failed repeatedly; calls paused")]
pub struct CircuitOpen;

/// Tuning of the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed calls (each after its retries) that open it.
    pub failures: u32,
    /// How long it stays open before one probe may pass.
    pub open_for: Duration,
}

/// The `circuit_state` gauge value: 0 closed, 1 open, 2 half-open.
pub fn gauge_value(state: CircuitState) -> i64 {
    match state {
        CircuitState::Closed => 0,
        CircuitState::Open => 1,
        CircuitState::HalfOpen => 2,
    }
}

/// The layer; every state change is logged and set on `gauge` at once (the
/// scrape-time refresh alone would miss an open period shorter than the
/// scrape interval).
pub fn layer(
    settings: BreakerSettings,
    gauge: Gauge,
) -> Result<CircuitBreakerLayer<DefaultClassifier>, CircuitBreakerConfigError> {
    CircuitBreakerLayer::builder()
        .name("ticket-service")
        .consecutive_failures(settings.failures.max(1) as usize)
        .wait_duration_in_open(settings.open_for)
        .permitted_calls_in_half_open(1)
        .on_state_transition(move |from, to| {
            gauge.set(gauge_value(to));
            match to {
                CircuitState::Open => {
                    tracing::warn!(?from, "circuit to the ticket service opened")
                }
                _ => tracing::info!(?from, ?to, "circuit to the ticket service changed"),
            }
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use tower::{Layer, ServiceExt};

    const OPEN_FOR: Duration = Duration::from_millis(120);

    fn backend(
        up: Arc<AtomicBool>,
        calls: Arc<AtomicU32>,
    ) -> impl tower::Service<(), Response = (), Error = &'static str, Future: Send> + Clone + Send
    {
        tower::service_fn(move |_: ()| {
            let up = up.load(Ordering::SeqCst);
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if up { Ok(()) } else { Err("down") } }
        })
    }

    #[tokio::test]
    async fn opens_after_repeated_failures_then_one_probe_decides() {
        let up = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU32::new(0));
        let gauge = Gauge::default();
        let service = layer(
            BreakerSettings {
                failures: 3,
                open_for: OPEN_FOR,
            },
            gauge.clone(),
        )
        .expect("layer")
        .layer(backend(up.clone(), calls.clone()));
        for _ in 0..3 {
            let error = service.clone().oneshot(()).await.expect_err("down");
            assert!(!error.is_circuit_open());
        }
        assert_eq!(service.state_sync(), CircuitState::Open);
        assert_eq!(gauge.get(), 1);
        // Open: refused without a call.
        let error = service.clone().oneshot(()).await.expect_err("open");
        assert!(error.is_circuit_open());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Later: one probe goes out; it fails, so the circuit opens again.
        tokio::time::sleep(OPEN_FOR + Duration::from_millis(30)).await;
        let error = service.clone().oneshot(()).await.expect_err("probe fails");
        assert!(!error.is_circuit_open());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(service.state_sync(), CircuitState::Open);
        assert!(
            service
                .clone()
                .oneshot(())
                .await
                .expect_err("open")
                .is_circuit_open()
        );
        // The backend recovers: the next probe closes the circuit.
        up.store(true, Ordering::SeqCst);
        tokio::time::sleep(OPEN_FOR + Duration::from_millis(30)).await;
        service.clone().oneshot(()).await.expect("probe passes");
        assert_eq!(service.state_sync(), CircuitState::Closed);
        assert_eq!(gauge.get(), 0);
        service.clone().oneshot(()).await.expect("closed");
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_success_resets_the_failure_count() {
        let flip = Arc::new(AtomicU32::new(0));
        let backend = {
            let flip = flip.clone();
            tower::service_fn(move |_: ()| {
                let n = flip.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n.is_multiple_of(2) {
                        Err("down")
                    } else {
                        Ok(())
                    }
                }
            })
        };
        let service = layer(
            BreakerSettings {
                failures: 2,
                open_for: OPEN_FOR,
            },
            Gauge::default(),
        )
        .expect("layer")
        .layer(backend);
        for _ in 0..10 {
            let _ = service.clone().oneshot(()).await;
        }
        assert_eq!(
            service.state_sync(),
            CircuitState::Closed,
            "never two failures in a row"
        );
    }

    #[test]
    fn gauge_values_are_documented_ones() {
        assert_eq!(gauge_value(CircuitState::Closed), 0);
        assert_eq!(gauge_value(CircuitState::Open), 1);
        assert_eq!(gauge_value(CircuitState::HalfOpen), 2);
    }
}
