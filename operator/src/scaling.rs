//! Replica counts. The operator owns them (no HPA fights it):
//!
//! | time | replicas |
//! |---|---|
//! | before `salesOpenAt − prewarm.leadSeconds` | `replicas.min` |
//! | pre-warm window | `prewarm.replicas` (so pods are warm when the crowd arrives) |
//! | on sale, load known | `clamp(load formula, replicas.min, replicas.max)` |
//! | on sale, stats unreachable | the last count (never zero); the caller sets `Degraded` |
//! | sold out or closed | `replicas.min` |
//!
//! The load formula, from the queue service's `/internal/stats` (on its
//! internal port, 9090):
//!
//! * queue: `⌈queue depth / 20,000⌉` — a waiter polls every ~10 s on average,
//!   so 20,000 waiters are ~2,000 requests/s, what one replica serves with
//!   headroom (see BENCHMARKS.md);
//! * ticket: `⌈active users / 250⌉` — admitted users browse seats and hold;
//! * payment: `⌈active users / 1,000⌉` — a fraction of them pay at a time.
//!
//! A [`Stabilizer`] then scales up at once but down only when every
//! recommendation of the last window (default 5 minutes) was lower, as the
//! HorizontalPodAutoscaler does, so a queue that drains and refills in waves
//! does not make pods come and go.

use std::collections::VecDeque;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use urr_crds::event::{EventSpec, ServiceRuntime};

use crate::children::ServiceKind;
use crate::lifecycle::service_lead;

pub const WAITERS_PER_QUEUE_REPLICA: u64 = 20_000;
pub const ACTIVE_USERS_PER_TICKET_REPLICA: u64 = 250;
pub const ACTIVE_USERS_PER_PAYMENT_REPLICA: u64 = 1_000;
/// Default stabilization window for scaling down.
pub const DEFAULT_STABILIZATION: Duration = Duration::from_secs(300);

/// Load figures from the queue service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub queue_depth: u64,
    pub active_users: u64,
    /// New arrivals (joins, tier-1 numbers) per second, measured by the
    /// queue over its last seconds: what `Auto` activation watches while
    /// the room is off and nobody waits.
    pub arrivals_per_second: u64,
}

impl Load {
    /// A crowd of `queue_depth` waiting and `active_users` admitted, with no
    /// arrivals measured (what most scaling and activation checks start from).
    pub fn crowd(queue_depth: u64, active_users: u64) -> Self {
        Self {
            queue_depth,
            active_users,
            arrivals_per_second: 0,
        }
    }
}

/// What a service should run, and why (for events and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    pub replicas: i32,
    pub reason: &'static str,
}

fn ceil_div(value: u64, per: u64) -> i32 {
    i32::try_from(value.div_ceil(per)).unwrap_or(i32::MAX)
}

/// Replicas the load alone asks for.
pub fn load_replicas(service: ServiceKind, load: &Load) -> i32 {
    match service {
        ServiceKind::Queue => ceil_div(load.queue_depth, WAITERS_PER_QUEUE_REPLICA),
        ServiceKind::Ticket => ceil_div(load.active_users, ACTIVE_USERS_PER_TICKET_REPLICA),
        ServiceKind::Payment => ceil_div(load.active_users, ACTIVE_USERS_PER_PAYMENT_REPLICA),
    }
}

/// The replicas `service` should run at `now`, before stabilization.
/// `current` is what runs now (the last good count when stats are missing).
pub fn recommend(
    spec: &EventSpec,
    service: ServiceKind,
    now: Timestamp,
    sold_out: bool,
    load: Option<&Load>,
    current: Option<i32>,
) -> Recommendation {
    let runtime: &ServiceRuntime = service.runtime(spec);
    let (min, max) = (runtime.replicas.min.max(1), runtime.replicas.max.max(1));
    let open = spec.sales_open_at.0;
    let prewarm = runtime.prewarm.map_or(min, |p| p.replicas);
    let bounded = |replicas: i32| replicas.clamp(min, max.max(min));
    if now >= spec.sales_close_at.0 {
        return Recommendation {
            replicas: min,
            reason: "closed",
        };
    }
    if now < open - service_lead(runtime) {
        return Recommendation {
            replicas: min,
            reason: "scheduled",
        };
    }
    if now < open {
        return Recommendation {
            replicas: bounded(prewarm),
            reason: "prewarming",
        };
    }
    if sold_out {
        return Recommendation {
            replicas: min,
            reason: "sold out",
        };
    }
    match load {
        Some(load) => Recommendation {
            replicas: bounded(load_replicas(service, load)),
            reason: "load",
        },
        // Keep the last good scale; never zero during a sale.
        None => Recommendation {
            replicas: bounded(current.unwrap_or(prewarm)),
            reason: "stats unavailable, keeping the last scale",
        },
    }
}

/// Scale up now, scale down only when the whole window agrees.
#[derive(Debug, Clone)]
pub struct Stabilizer {
    window: Duration,
    history: VecDeque<(Timestamp, i32)>,
}

impl Stabilizer {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            history: VecDeque::new(),
        }
    }

    /// Records a recommendation at `now` and returns the replicas to run:
    /// the highest recommendation within the window.
    pub fn apply(&mut self, now: Timestamp, recommended: i32) -> i32 {
        self.history.push_back((now, recommended));
        let window = k8s_openapi::jiff::SignedDuration::try_from(self.window).unwrap_or_default();
        while self
            .history
            .front()
            .is_some_and(|(at, _)| *at < now - window)
        {
            self.history.pop_front();
        }
        self.history
            .iter()
            .map(|(_, replicas)| *replicas)
            .max()
            .unwrap_or(recommended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::example_event;
    use k8s_openapi::jiff::SignedDuration;

    fn at(spec: &EventSpec, offset: i64) -> Timestamp {
        spec.sales_open_at.0 + SignedDuration::from_secs(offset)
    }

    /// docs/capacity.md computes what a million buyers need; its table of
    /// loads and replicas must be what this formula recommends.
    #[test]
    fn capacity_document_matches_the_operator() {
        let document = include_str!("../../docs/capacity.md");
        let table = document
            .split("<!-- capacity-check:")
            .nth(1)
            .and_then(|rest| rest.split("<!-- /capacity-check -->").next())
            .expect("docs/capacity.md has its capacity-check table");
        let figure = |cell: &str| -> u64 {
            cell.trim()
                .replace(',', "")
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {cell:?}"))
        };
        let mut rows = 0;
        for line in table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.contains("---"))
        {
            let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
            let numeric = |cell: &str| cell.trim().chars().all(|c| c.is_ascii_digit() || c == ',');
            if cells.len() != 5 || !numeric(cells[0]) {
                continue; // the header
            }
            let load = Load {
                queue_depth: figure(cells[0]),
                active_users: figure(cells[1]),
                arrivals_per_second: 0,
            };
            for (service, cell) in [
                (ServiceKind::Queue, cells[2]),
                (ServiceKind::Ticket, cells[3]),
                (ServiceKind::Payment, cells[4]),
            ] {
                assert_eq!(
                    u64::try_from(load_replicas(service, &load)).expect("positive"),
                    figure(cell),
                    "docs/capacity.md row {line:?}: {service:?}"
                );
            }
            rows += 1;
        }
        assert!(rows >= 4, "the capacity-check table lost its rows");
    }

    #[test]
    fn replicas_follow_the_schedule_then_the_load() {
        let event = example_event();
        let spec = &event.spec;
        // Queue in the example: min 2, max 40, prewarm 20 from 1800 s before open.
        let busy = Load::crowd(500_000, 1000);
        let quiet = Load::crowd(10, 3);
        for (offset, sold_out, load, expected, reason) in [
            (-1801, false, None, 2, "scheduled"),
            (-1800, false, None, 20, "prewarming"),
            (-1, false, Some(&busy), 20, "prewarming"),
            (0, false, Some(&busy), 25, "load"),
            (0, false, Some(&quiet), 2, "load"),
            (60, true, Some(&busy), 2, "sold out"),
            (86_400 * 30, false, Some(&busy), 2, "closed"),
        ] {
            let got = recommend(
                spec,
                ServiceKind::Queue,
                at(spec, offset),
                sold_out,
                load,
                Some(7),
            );
            assert_eq!(
                (got.replicas, got.reason),
                (expected, reason),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn load_is_clamped_to_the_bounds() {
        let event = example_event();
        let spec = &event.spec;
        let flood = Load {
            queue_depth: u64::MAX,
            active_users: u64::MAX,
            arrivals_per_second: 0,
        };
        for service in ServiceKind::ALL {
            let max = service.runtime(spec).replicas.max;
            assert_eq!(
                recommend(spec, service, at(spec, 10), false, Some(&flood), None).replicas,
                max
            );
        }
    }

    #[test]
    fn missing_stats_keep_the_last_scale_and_never_zero() {
        let event = example_event();
        let spec = &event.spec;
        let keep = recommend(
            spec,
            ServiceKind::Ticket,
            at(spec, 10),
            false,
            None,
            Some(13),
        );
        assert_eq!(keep.replicas, 13);
        let never_zero = recommend(
            spec,
            ServiceKind::Ticket,
            at(spec, 10),
            false,
            None,
            Some(0),
        );
        assert_eq!(never_zero.replicas, spec.services.ticket.replicas.min);
        let unknown = recommend(spec, ServiceKind::Ticket, at(spec, 10), false, None, None);
        assert_eq!(unknown.replicas, 10, "falls back to the pre-warm count");
    }

    #[test]
    fn stabilizer_scales_up_at_once_and_down_after_the_window() {
        let start = Timestamp::from_second(1_000_000).expect("time");
        let mut stabilizer = Stabilizer::new(Duration::from_secs(300));
        let t = |s: i64| start + SignedDuration::from_secs(s);
        assert_eq!(stabilizer.apply(t(0), 10), 10);
        assert_eq!(stabilizer.apply(t(30), 25), 25, "up at once");
        assert_eq!(stabilizer.apply(t(60), 5), 25, "down waits");
        assert_eq!(
            stabilizer.apply(t(329), 5),
            25,
            "still inside the window of the 25"
        );
        assert_eq!(stabilizer.apply(t(331), 5), 5, "the whole window agrees");
        assert_eq!(stabilizer.apply(t(332), 8), 8);
    }
}
