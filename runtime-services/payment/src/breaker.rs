//! A circuit breaker as a tower `Layer`. tower ships timeouts and retries
//! (used by [`crate::ticket_client`]) but no circuit breaker, and the crates
//! that offer one pull in a runtime of their own or predate tower 0.5; this
//! is the state machine and nothing else, tested below with paused time.
//!
//! Closed: calls pass; `failure_threshold` consecutive failures open it.
//! Open: calls fail at once (no request leaves) for `open_for`.
//! Half-open: one probe passes; success closes, failure opens again.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::{Layer, Service};

/// What the breaker turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open: the ticket service failed repeatedly; calls paused")]
pub struct CircuitOpen;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// For the `circuit_state` gauge.
    pub fn as_gauge(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The shared state of one breaker (clone the layer, share the state).
#[derive(Debug, Clone)]
pub struct Breaker {
    state: Arc<Mutex<Inner>>,
    failure_threshold: u32,
    open_for: Duration,
}

impl Breaker {
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(Inner::Closed { failures: 0 })),
            failure_threshold: failure_threshold.max(1),
            open_for,
        }
    }

    pub fn state(&self) -> CircuitState {
        match *self.lock() {
            Inner::Closed { .. } => CircuitState::Closed,
            Inner::Open { until } if Instant::now() >= until => CircuitState::HalfOpen,
            Inner::Open { .. } => CircuitState::Open,
            Inner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere held it; the state is
        // still a valid enum value.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// May a call go out now?
    fn admit(&self) -> bool {
        let mut state = self.lock();
        match *state {
            Inner::Closed { .. } => true,
            Inner::Open { until } if Instant::now() >= until => {
                *state = Inner::HalfOpen { probing: true };
                true
            }
            Inner::Open { .. } => false,
            Inner::HalfOpen { probing: true } => false,
            Inner::HalfOpen { probing: false } => {
                *state = Inner::HalfOpen { probing: true };
                true
            }
        }
    }

    fn record(&self, success: bool) {
        let mut state = self.lock();
        *state = match (&*state, success) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) if failures + 1 < self.failure_threshold => {
                Inner::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => Inner::Open {
                until: Instant::now() + self.open_for,
            },
        };
    }
}

impl<S> Layer<S> for Breaker {
    type Service = BreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BreakerService<S> {
    inner: S,
    breaker: Breaker,
}

impl<S, Req> Service<Req> for BreakerService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: From<CircuitOpen> + Send + 'static,
    S::Response: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if !self.breaker.admit() {
            return Box::pin(async { Err(CircuitOpen.into()) });
        }
        let breaker = self.breaker.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            breaker.record(result.is_ok());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use tower::ServiceExt;

    #[derive(Debug, PartialEq, Eq)]
    enum TestError {
        Down,
        Open,
    }

    impl From<CircuitOpen> for TestError {
        fn from(_: CircuitOpen) -> Self {
            TestError::Open
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_repeated_failures_and_half_opens_later() {
        let up = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU32::new(0));
        let backend = {
            let up = up.clone();
            let calls = calls.clone();
            tower::service_fn(move |_: ()| {
                let up = up.load(Ordering::SeqCst);
                calls.fetch_add(1, Ordering::SeqCst);
                async move { if up { Ok(()) } else { Err(TestError::Down) } }
            })
        };
        let breaker = Breaker::new(3, Duration::from_secs(10));
        let service = breaker.layer(backend);
        for _ in 0..3 {
            assert_eq!(service.clone().oneshot(()).await, Err(TestError::Down));
        }
        assert_eq!(breaker.state(), CircuitState::Open);
        // Open: refused without a call.
        assert_eq!(service.clone().oneshot(()).await, Err(TestError::Open));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Later: one probe goes out; it fails, so the circuit opens again.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        assert_eq!(service.clone().oneshot(()).await, Err(TestError::Down));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(service.clone().oneshot(()).await, Err(TestError::Open));
        // The backend recovers: the next probe closes the circuit.
        up.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(service.clone().oneshot(()).await, Ok(()));
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert_eq!(service.clone().oneshot(()).await, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_count() {
        let flip = Arc::new(AtomicU32::new(0));
        let backend = {
            let flip = flip.clone();
            tower::service_fn(move |_: ()| {
                let n = flip.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n.is_multiple_of(2) {
                        Err(TestError::Down)
                    } else {
                        Ok(())
                    }
                }
            })
        };
        let breaker = Breaker::new(2, Duration::from_secs(10));
        let service = breaker.layer(backend);
        for _ in 0..10 {
            let _ = service.clone().oneshot(()).await;
        }
        assert_eq!(
            breaker.state(),
            CircuitState::Closed,
            "never two failures in a row"
        );
    }
}
