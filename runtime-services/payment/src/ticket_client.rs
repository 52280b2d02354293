//! The synchronous path to the ticket service: quote, confirm and cancel
//! over its internal API (`urr_service_common::contracts`).
//!
//! Confirm and cancel go through a tower stack: the circuit breaker
//! ([`crate::breaker`]) outside, then tower's `Retry` (bounded attempts,
//! jittered exponential backoff) around tower's `Timeout` per attempt. The
//! breaker sits outside the retries so one logical call, however many
//! attempts it took, counts once. Transport failures, timeouts, 5xx and 429
//! (overload) answers are retried and counted by the breaker; a 401/403 (a
//! service token being rotated) is retried but not counted. A 4xx is an
//! answer, and only the ticket service's explicit "this hold cannot be
//! confirmed" problems ([`FINAL_REFUSALS`]) are final: anything else (a
//! refused service token, a 404 from a misrouted URL) says nothing about the
//! hold, and acting on it as a refusal would refund buyers whose tickets the
//! Kafka path then issues.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::{Policy, RetryLayer};
use tower::timeout::TimeoutLayer;
use tower::util::rng::HasherRng;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use urr_service_common::contracts::{
    CancelRequest, Cancellation, ConfirmRequest, Confirmation, HoldQuote,
};

use prometheus_client::metrics::gauge::Gauge;

use crate::breaker::{Breaker, BreakerSettings, CircuitBreakerError, CircuitOpen, CircuitState};

/// One call of the internal API.
#[derive(Debug, Clone)]
pub enum TicketRequest {
    Confirm {
        hold: String,
        body: ConfirmRequest,
        traceparent: Option<String>,
    },
    Cancel {
        hold: String,
        body: CancelRequest,
        traceparent: Option<String>,
    },
}

/// The ticket service's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketAnswer {
    Confirmed(Confirmation),
    Canceled(Cancellation),
    /// The ticket service's explicit refusal of this hold
    /// ([`FINAL_REFUSALS`]): final, not retried.
    Refused {
        status: u16,
        problem: String,
        detail: String,
    },
    /// Any other 4xx (401/403 service token, 404, 400): the request was not
    /// taken up, which says nothing about the hold. Not retried here (the
    /// same request would get the same answer), but not final either.
    Rejected {
        status: u16,
        problem: String,
        detail: String,
    },
}

impl TicketAnswer {
    /// A 401/403: the ticket service refused our service token (a rotation
    /// under way, a misconfigured Secret), nothing about the hold.
    pub fn is_auth_refusal(&self) -> bool {
        matches!(
            self,
            TicketAnswer::Rejected {
                status: 401 | 403,
                ..
            }
        )
    }
}

/// The ticket service's problems (status, type slug under
/// [`urr_service_common::problem::PROBLEM_BASE`]) that mean "this payment
/// can never confirm this hold" (`urr-ticket`'s `TicketError`): the only
/// answers after which the payment service refunds.
pub const FINAL_REFUSALS: [(u16, &str); 4] = [
    (409, "hold-expired"),
    (409, "hold-not-active"),
    (409, "hold-confirmed-elsewhere"),
    (422, "amount-mismatch"),
];

/// Whether a non-success answer is one of [`FINAL_REFUSALS`]. `problem_type`
/// is the full `type` URI: a slug alone could come from anything answering
/// on that URL.
pub fn is_final_refusal(status: u16, problem_type: &str) -> bool {
    problem_type
        .strip_prefix(urr_service_common::problem::PROBLEM_BASE)
        .is_some_and(|slug| FINAL_REFUSALS.contains(&(status, slug)))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketCallError {
    #[error("ticket service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    CircuitOpen(#[from] CircuitOpen),
}

impl TicketCallError {
    fn from_stack(error: CircuitBreakerError<BoxError>) -> Self {
        match error {
            CircuitBreakerError::OpenCircuit => TicketCallError::CircuitOpen(CircuitOpen),
            CircuitBreakerError::Inner(error) => Self::from_box(error),
        }
    }

    fn from_box(error: BoxError) -> Self {
        if error.is::<CircuitOpen>() {
            return TicketCallError::CircuitOpen(CircuitOpen);
        }
        if error.is::<tower::timeout::error::Elapsed>() {
            return TicketCallError::Unavailable("timed out".into());
        }
        match error.downcast::<TicketCallError>() {
            Ok(error) => *error,
            Err(other) => TicketCallError::Unavailable(other.to_string()),
        }
    }
}

/// The HTTP leaf service.
#[derive(Clone)]
pub struct TicketHttp {
    base: String,
    token: String,
    http: reqwest::Client,
}

urr_service_common::debug_fields!(TicketHttp { base });

/// A hold id safe to put in a URL path: the ticket service's ids are UUIDs;
/// anything with `/`, `.` or `?` could reshape the internal path.
pub fn valid_hold_id(hold: &str) -> bool {
    (1..=100).contains(&hold.len())
        && hold
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Service<TicketRequest> for TicketHttp {
    type Response = TicketAnswer;
    type Error = TicketCallError;
    type Future = BoxFuture<'static, Result<TicketAnswer, TicketCallError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: TicketRequest) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (path, body, traceparent) = match &request {
                TicketRequest::Confirm {
                    hold,
                    body,
                    traceparent,
                } => (
                    format!("/internal/holds/{hold}/confirm"),
                    serde_json::to_value(body).unwrap_or_default(),
                    traceparent.clone(),
                ),
                TicketRequest::Cancel {
                    hold,
                    body,
                    traceparent,
                } => (
                    format!("/internal/holds/{hold}/cancel"),
                    serde_json::to_value(body).unwrap_or_default(),
                    traceparent.clone(),
                ),
            };
            let mut call = this
                .http
                .post(format!("{}{path}", this.base))
                .bearer_auth(&this.token)
                .json(&body);
            if let Some(traceparent) = &traceparent {
                call = call.header("traceparent", traceparent);
            }
            let response = call
                .send()
                .await
                .map_err(|e| TicketCallError::Unavailable(e.to_string()))?;
            let status = response.status();
            // 429 is overload like a 5xx: worth another attempt, and what
            // the breaker is for.
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                return Err(TicketCallError::Unavailable(format!(
                    "ticket service answered {status}"
                )));
            }
            if !status.is_success() {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                let problem_type = body["type"].as_str().unwrap_or_default();
                let status = status.as_u16();
                let final_refusal = is_final_refusal(status, problem_type);
                let problem = problem_type
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let detail = body["detail"].as_str().unwrap_or_default().to_owned();
                return Ok(if final_refusal {
                    TicketAnswer::Refused {
                        status,
                        problem,
                        detail,
                    }
                } else {
                    TicketAnswer::Rejected {
                        status,
                        problem,
                        detail,
                    }
                });
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| TicketCallError::Unavailable(e.to_string()))?;
            let parse = |e: serde_json::Error| {
                TicketCallError::Unavailable(format!("unreadable answer: {e}"))
            };
            Ok(match request {
                TicketRequest::Confirm { .. } => {
                    TicketAnswer::Confirmed(serde_json::from_slice(&bytes).map_err(parse)?)
                }
                TicketRequest::Cancel { .. } => {
                    TicketAnswer::Canceled(serde_json::from_slice(&bytes).map_err(parse)?)
                }
            })
        })
    }
}

/// Retries transient failures a bounded number of times, with jitter.
#[derive(Debug, Clone)]
pub struct RetryTransient {
    attempts_left: u32,
    backoff: ExponentialBackoff<HasherRng>,
}

impl Policy<TicketRequest, TicketAnswer, BoxError> for RetryTransient {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _: &mut TicketRequest,
        result: &mut Result<TicketAnswer, BoxError>,
    ) -> Option<Self::Future> {
        // A refused service token is retried too: while a rotated token
        // rolls out, replicas disagree about it, and the next attempt may
        // reach one that already accepts it. It is an answer, not a
        // failure, so the breaker outside does not count it.
        let retryable = match result {
            Err(_) => true,
            Ok(answer) => answer.is_auth_refusal(),
        };
        match result {
            _ if retryable && self.attempts_left > 0 => {
                self.attempts_left -= 1;
                Some(self.backoff.next_backoff())
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &TicketRequest) -> Option<TicketRequest> {
        Some(request.clone())
    }
}

/// Tuning of the synchronous path.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub timeout: Duration,
    pub retries: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub breaker_failures: u32,
    pub breaker_open_for: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            retries: 2,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(10),
        }
    }
}

type Stack = Breaker<tower::retry::Retry<RetryTransient, tower::timeout::Timeout<TicketHttp>>>;

/// The ticket service, as the payment service calls it.
#[derive(Clone)]
pub struct TicketClient {
    base: String,
    token: String,
    http: reqwest::Client,
    stack: Stack,
}

impl std::fmt::Debug for TicketClient {
    // The service token stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketClient")
            .field("base", &self.base)
            .field("circuit", &self.circuit_state())
            .finish_non_exhaustive()
    }
}

/// Why a [`TicketClient`] could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("retry backoff settings: {0}")]
    Backoff(#[from] tower::retry::backoff::InvalidBackoff),
    #[error("circuit breaker settings: {0}")]
    Breaker(#[from] tower_resilience_circuitbreaker::CircuitBreakerConfigError),
}

impl TicketClient {
    /// `circuit_gauge` follows the breaker's state (0 closed, 1 open, 2 half-open).
    pub fn new(
        base: &str,
        token: &str,
        settings: &ClientSettings,
        circuit_gauge: Gauge,
    ) -> Result<Self, ClientSetupError> {
        let http = urr_service_common::http_client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let backoff = ExponentialBackoffMaker::new(
            settings.backoff_min,
            settings.backoff_max,
            1.0,
            HasherRng::default(),
        )?
        .make_backoff();
        let breaker = crate::breaker::layer(
            BreakerSettings {
                failures: settings.breaker_failures,
                open_for: settings.breaker_open_for,
            },
            circuit_gauge,
        )?;
        let leaf = TicketHttp {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: http.clone(),
        };
        let stack = ServiceBuilder::new()
            .layer(breaker)
            .layer(RetryLayer::new(RetryTransient {
                attempts_left: settings.retries,
                backoff,
            }))
            .layer(TimeoutLayer::new(settings.timeout))
            .service(leaf);
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
            stack,
        })
    }

    /// The breaker's state (an open circuit reads open until the next call
    /// after `open_for` makes it half-open).
    pub fn circuit_state(&self) -> CircuitState {
        self.stack.state_sync()
    }

    /// Sends one confirm or cancel through the stack.
    pub async fn call(&self, request: TicketRequest) -> Result<TicketAnswer, TicketCallError> {
        let stack = self.stack.clone();
        stack
            .map_err(TicketCallError::from_stack)
            .oneshot(request)
            .await
    }

    /// The quote of a hold (`None`: unknown hold).
    /// Not through the breaker: a quote is the buyer waiting on a create,
    /// and its failure is answered at once (503), never retried behind them.
    pub async fn quote(
        &self,
        hold: &str,
        traceparent: Option<&str>,
    ) -> Result<Option<HoldQuote>, TicketCallError> {
        if !valid_hold_id(hold) {
            return Ok(None);
        }
        self.get(&format!("/internal/holds/{hold}"), traceparent)
            .await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        traceparent: Option<&str>,
    ) -> Result<Option<T>, TicketCallError> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(2));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request
            .send()
            .await
            .map_err(|e| TicketCallError::Unavailable(e.to_string()))?;
        match response.status().as_u16() {
            200 => response
                .json()
                .await
                .map(Some)
                .map_err(|e| TicketCallError::Unavailable(e.to_string())),
            404 => Ok(None),
            status => Err(TicketCallError::Unavailable(format!(
                "ticket service answered {status}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
