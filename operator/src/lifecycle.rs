//! Where an Event is in its life, computed from its times only, so the same
//! inputs always give the same phase (tests run at the exact boundaries).
//!
//! ```text
//!   Scheduled ── salesOpenAt − max prewarm lead ──▶ Prewarming ── salesOpenAt ──▶ OnSale ── salesCloseAt ──▶ Closed
//!                                                                                  └── every seat sold ──▶ SoldOut ─┘
//! ```
//!
//! Boundaries are inclusive at the start: at exactly `salesOpenAt` the event
//! is on sale; at exactly `salesCloseAt` it is closed.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use urr_crds::EventPhase;
use urr_crds::event::{EventSpec, ServiceRuntime};

/// The longest pre-warm lead of the three services (when the first one scales up).
pub fn prewarm_lead(spec: &EventSpec) -> SignedDuration {
    [
        &spec.services.queue,
        &spec.services.ticket,
        &spec.services.payment,
    ]
    .into_iter()
    .map(service_lead)
    .max()
    .unwrap_or(SignedDuration::ZERO)
}

/// One service's pre-warm lead (zero without a pre-warm).
pub fn service_lead(runtime: &ServiceRuntime) -> SignedDuration {
    runtime
        .prewarm
        .map(|prewarm| SignedDuration::from_secs(i64::from(prewarm.lead_seconds)))
        .unwrap_or(SignedDuration::ZERO)
}

/// The phase at `now`. `sold_out` comes from the ticket service's counters.
pub fn phase_at(spec: &EventSpec, now: Timestamp, sold_out: bool) -> EventPhase {
    let open = spec.sales_open_at.0;
    let close = spec.sales_close_at.0;
    if now >= close {
        EventPhase::Closed
    } else if now >= open {
        if sold_out {
            EventPhase::SoldOut
        } else {
            EventPhase::OnSale
        }
    } else if now >= open - prewarm_lead(spec) {
        EventPhase::Prewarming
    } else {
        EventPhase::Scheduled
    }
}

/// How long until something time-driven changes: the next pre-warm start of
/// any service, the opening, or the close. `None` once closed.
pub fn next_boundary(spec: &EventSpec, now: Timestamp) -> Option<Duration> {
    let open = spec.sales_open_at.0;
    let mut boundaries: Vec<Timestamp> = [
        &spec.services.queue,
        &spec.services.ticket,
        &spec.services.payment,
    ]
    .into_iter()
    .map(|runtime| open - service_lead(runtime))
    .collect();
    boundaries.push(open);
    boundaries.push(spec.sales_close_at.0);
    boundaries
        .into_iter()
        .filter(|boundary| *boundary > now)
        .min()
        .and_then(|boundary| Duration::try_from(boundary.duration_since(now)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::example_event;

    fn at(spec: &EventSpec, offset_from_open: i64) -> Timestamp {
        spec.sales_open_at.0 + SignedDuration::from_secs(offset_from_open)
    }

    #[test]
    fn phases_at_and_around_every_boundary() {
        let event = example_event();
        let spec = &event.spec;
        let lead = prewarm_lead(spec).as_secs(); // 1800 in the example
        assert_eq!(lead, 1800);
        let close = spec
            .sales_close_at
            .0
            .duration_since(spec.sales_open_at.0)
            .as_secs();
        for (offset, sold_out, expected) in [
            (-lead - 1, false, EventPhase::Scheduled),
            (-lead, false, EventPhase::Prewarming),
            (-1, false, EventPhase::Prewarming),
            (0, false, EventPhase::OnSale),
            (0, true, EventPhase::SoldOut),
            (close - 1, false, EventPhase::OnSale),
            (close, false, EventPhase::Closed),
            (close, true, EventPhase::Closed),
            (close + 86_400, false, EventPhase::Closed),
        ] {
            assert_eq!(
                phase_at(spec, at(spec, offset), sold_out),
                expected,
                "offset {offset}, sold out {sold_out}"
            );
        }
    }

    #[test]
    fn requeue_lands_on_the_next_boundary() {
        let event = example_event();
        let spec = &event.spec;
        // Leads in the example: queue 1800 s, ticket 1800 s, payment 900 s.
        assert_eq!(
            next_boundary(spec, at(spec, -3600)),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            next_boundary(spec, at(spec, -1800)),
            Some(Duration::from_secs(900)),
            "payment's pre-warm next"
        );
        assert_eq!(
            next_boundary(spec, at(spec, -10)),
            Some(Duration::from_secs(10))
        );
        let close = spec
            .sales_close_at
            .0
            .duration_since(spec.sales_open_at.0)
            .as_secs();
        assert_eq!(
            next_boundary(spec, at(spec, 0)),
            Some(Duration::from_secs(close as u64))
        );
        assert_eq!(next_boundary(spec, at(spec, close)), None);
    }

    #[test]
    fn clock_skew_into_the_past_only_delays_the_phase() {
        // A controller whose clock runs 5 s late sees the previous phase for
        // 5 s, never a later one, and requeues for the remaining 5 s.
        let event = example_event();
        let spec = &event.spec;
        assert_eq!(phase_at(spec, at(spec, -5), false), EventPhase::Prewarming);
        assert_eq!(
            next_boundary(spec, at(spec, -5)),
            Some(Duration::from_secs(5))
        );
    }
}
