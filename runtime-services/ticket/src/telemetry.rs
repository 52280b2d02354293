//! Prometheus metrics of the ticket service.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfirmLabels {
    /// `rest` or `kafka`.
    pub path: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LayerLabel {
    /// Which protection turned the attempt away: `redis` or `postgres`.
    pub layer: String,
}

#[derive(Debug)]
pub struct TicketMetrics {
    pub registry: Registry,
    /// Hold attempts by outcome (`held`, `taken`, `sold-out`, `limit`, `replayed`, `error`).
    pub holds: Family<OutcomeLabel, Counter>,
    /// Conflicts by the layer that caught them.
    pub conflicts: Family<LayerLabel, Counter>,
    pub confirmations: Family<ConfirmLabels, Counter>,
    pub expiries: Counter,
    pub releases: Counter,
    pub cancellations: Counter,
    pub transfers: Counter,
    pub hold_seconds: Histogram,
    pub confirm_seconds: Histogram,
    pub seats_sold: Gauge,
    pub seats_held: Gauge,
    pub seats_total: Gauge,
    pub poisoned_messages: Counter,
    /// Request durations by route.
    pub requests: urr_service_common::metrics::RequestMetrics,
}

impl Default for TicketMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl TicketMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("urr_ticket");
        let metrics = Self {
            requests: urr_service_common::metrics::RequestMetrics::register(&mut registry),
            registry: Registry::default(),
            holds: Family::default(),
            conflicts: Family::default(),
            confirmations: Family::default(),
            expiries: Counter::default(),
            releases: Counter::default(),
            cancellations: Counter::default(),
            transfers: Counter::default(),
            hold_seconds: Histogram::new(exponential_buckets(0.0002, 2.0, 16)),
            confirm_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            seats_sold: Gauge::default(),
            seats_held: Gauge::default(),
            seats_total: Gauge::default(),
            poisoned_messages: Counter::default(),
        };
        urr_service_common::register_metrics!(registry, metrics, {
            "holds" => holds: "Hold attempts by outcome",
            "conflicts" => conflicts: "Hold attempts refused because the places were taken, by the layer that refused them",
            "confirmations" => confirmations: "Hold confirmations by path (rest, kafka) and outcome",
            "hold_expiries" => expiries: "Holds expired by the reaper",
            "hold_releases" => releases: "Holds released by their buyer",
            "cancellations" => cancellations: "Reservations canceled (refunds)",
            "transfers" => transfers: "Tickets transferred",
            "hold_duration_seconds" => hold_seconds: "Latency of POST holds, all outcomes",
            "confirm_duration_seconds" => confirm_seconds: "Latency of a confirmation",
            "seats_sold" => seats_sold: "Places sold",
            "seats_held" => seats_held: "Places held",
            "seats_total" => seats_total: "Places on sale",
            "poisoned_messages" => poisoned_messages: "Kafka messages skipped because they can never be applied",
        });
        Self {
            registry,
            ..metrics
        }
    }

    pub fn hold(&self, outcome: &str) {
        self.holds
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn conflict(&self, layer: &str) {
        self.conflicts
            .get_or_create(&LayerLabel {
                layer: layer.to_owned(),
            })
            .inc();
    }

    pub fn confirmation(&self, path: &str, outcome: &str) {
        self.confirmations
            .get_or_create(&ConfirmLabels {
                path: path.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
