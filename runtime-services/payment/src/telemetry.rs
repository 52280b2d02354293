//! Prometheus metrics of the payment service.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Debug)]
pub struct PaymentMetrics {
    pub registry: Registry,
    /// Payments currently in each state (refreshed at scrape).
    pub payments: Family<StateLabel, Gauge>,
    /// Transitions into each state.
    pub transitions: Family<StateLabel, Counter>,
    /// From the authorize call to the provider's verdict (webhook).
    pub provider_latency_seconds: Histogram,
    /// Synchronous confirm/cancel calls to the ticket service, by outcome.
    pub ticket_calls: Family<OutcomeLabel, Counter>,
    /// Synchronous confirms of a captured payment that settled nothing
    /// (`auth`: 401/403; `unavailable`: 429, 5xx, timeout, unreachable;
    /// `circuit-open`; `rejected`: any other non-final 4xx): the payment
    /// stays captured for the reconciler and the Kafka path. Alert on `auth`
    /// and `rejected` (a human must fix them), and on a sustained rate.
    pub confirm_deferred: Family<ReasonLabel, Counter>,
    /// 0 closed, 1 open, 2 half-open.
    pub circuit_state: Gauge,
    pub webhooks: Family<OutcomeLabel, Counter>,
    /// Request durations by route.
    pub requests: urr_service_common::metrics::RequestMetrics,
}

impl Default for PaymentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PaymentMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("urr_payment");
        let metrics = Self {
            requests: urr_service_common::metrics::RequestMetrics::register(&mut registry),
            registry: Registry::default(),
            payments: Family::default(),
            transitions: Family::default(),
            provider_latency_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            ticket_calls: Family::default(),
            confirm_deferred: Family::default(),
            circuit_state: Gauge::default(),
            webhooks: Family::default(),
        };
        urr_service_common::register_metrics!(registry, metrics, {
            "payments" => payments: "Payments by state",
            "transitions" => transitions: "Payment state transitions, by the state entered",
            "provider_latency_seconds" => provider_latency_seconds: "Time from the authorize call to the provider's verdict",
            "ticket_calls" => ticket_calls: "Synchronous calls to the ticket service, by outcome",
            "confirm_deferred" => confirm_deferred: "Confirms of a captured payment the ticket service did not settle (auth, unavailable, circuit-open, rejected); left for the reconciler and Kafka",
            "circuit_state" => circuit_state: "Circuit breaker towards the ticket service: 0 closed, 1 open, 2 half-open",
            "webhooks" => webhooks: "Webhook deliveries by outcome",
        });
        Self {
            registry,
            ..metrics
        }
    }

    pub fn entered(&self, state: &str) {
        self.transitions
            .get_or_create(&StateLabel {
                state: state.to_owned(),
            })
            .inc();
    }

    pub fn ticket_call(&self, outcome: &str) {
        self.ticket_calls
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn confirm_deferred(&self, reason: &str) {
        self.confirm_deferred
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
