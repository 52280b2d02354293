//! Prometheus metrics of the queue service. The gauges are refreshed from the
//! same figures `/internal/stats` returns, at scrape time, so both agree.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::admission::AdmissionState;
use crate::store::TickOutcome;

#[derive(Debug)]
pub struct QueueMetrics {
    pub registry: Registry,
    pub depth: Gauge,
    pub active_users: Gauge,
    pub admitted_total: Gauge,
    pub admitted_per_second: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub oldest_wait_seconds: Gauge,
    pub admitted_by_this_instance: Counter,
    pub reaped: Counter,
    pub tick_seconds: Histogram,
    pub joins: Counter,
    pub numbers_issued: Counter,
    /// Tier-1 numbers this replica leased and let age out unused (store/numbers.rs).
    pub numbers_skipped: Gauge,
    /// Users removed by `spec.control` (kicks and blocks).
    pub kicked: Counter,
    /// Sessions ended by a completed order (the ticket service's signal).
    pub sessions_ended: Counter,
    /// 1 for the room's admission state now (`open`, `paused`, `draining`,
    /// `soldOut`, `closed`), 0 for the others.
    pub admission_state: Family<Vec<(String, String)>, Gauge>,
    /// Refusals by reason (`rate-limit-ip`, `rate-limit-user`, `unauthorized`, ...).
    pub refused: Family<Vec<(String, String)>, Counter>,
    /// Invite codes used up, by mode (`skip`, `priority`).
    pub invites_redeemed: Family<Vec<(String, String)>, Counter>,
    /// Request durations by route.
    pub requests: urr_service_common::metrics::RequestMetrics,
}

impl QueueMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("urr_queue");
        let metrics = Self {
            registry: Registry::default(),
            depth: Gauge::default(),
            active_users: Gauge::default(),
            admitted_total: Gauge::default(),
            admitted_per_second: Gauge::default(),
            oldest_wait_seconds: Gauge::default(),
            admitted_by_this_instance: Counter::default(),
            reaped: Counter::default(),
            tick_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            joins: Counter::default(),
            numbers_issued: Counter::default(),
            numbers_skipped: Gauge::default(),
            kicked: Counter::default(),
            sessions_ended: Counter::default(),
            admission_state: Family::default(),
            refused: Family::default(),
            invites_redeemed: Family::default(),
            requests: urr_service_common::metrics::RequestMetrics::register(&mut registry),
        };
        urr_service_common::register_metrics!(registry, metrics, {
            "depth" => depth: "Users waiting in the tier-2 queue",
            "active_users" => active_users: "Users holding a valid entry token",
            "admitted" => admitted_total: "Users admitted since the queue began (all replicas)",
            "admitted_per_second" => admitted_per_second: "Measured admission rate",
            "oldest_wait_seconds" => oldest_wait_seconds: "Wait of the user at the head of the queue",
            "instance_admitted" => admitted_by_this_instance: "Users admitted by this replica's admitter",
            "reaped" => reaped: "Waiters dropped for missing heartbeats",
            "admitter_tick_seconds" => tick_seconds: "Duration of one admitter tick",
            "joins" => joins: "Tier-2 joins accepted",
            "numbers_issued" => numbers_issued: "Tier-1 numbers handed out",
            "numbers_skipped" => numbers_skipped: "Tier-1 numbers this replica leased and let age out unused",
            "kicked" => kicked: "Users removed from the room by the operator",
            "sessions_ended" => sessions_ended: "Sessions ended at once by a completed order",
            "admission_state" => admission_state: "The room's admission state (1 for the current one)",
            "refused" => refused: "Requests refused, by reason",
            "invites_redeemed" => invites_redeemed: "Invite codes used up, by mode",
        });
        Self {
            registry,
            ..metrics
        }
    }

    pub fn record_tick(&self, outcome: &TickOutcome, took: Duration) {
        self.admitted_by_this_instance.inc_by(outcome.admitted);
        self.reaped.inc_by(outcome.reaped);
        self.tick_seconds.observe(took.as_secs_f64());
    }

    pub fn set_admission(&self, state: AdmissionState) {
        for each in AdmissionState::ALL {
            self.admission_state
                .get_or_create(&vec![("state".to_owned(), each.as_str().to_owned())])
                .set(i64::from(each == state));
        }
    }

    pub fn invite_redeemed(&self, mode: &str) {
        self.invites_redeemed
            .get_or_create(&vec![("mode".to_owned(), mode.to_owned())])
            .inc();
    }

    pub fn refuse(&self, reason: &str) {
        self.refused
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }
}

impl Default for QueueMetrics {
    fn default() -> Self {
        Self::new()
    }
}
