//! Whether the room lets anyone in right now, and why not: one rule for the
//! answers buyers get (`admission` in the queue's JSON, the page's screens),
//! the stats the operator shows in `status.admission`, and the admitter's
//! script (`store/lua/tick.lua`), which applies the same rule atomically.

use serde::Serialize;

use crate::policy::{Policy, QueueingMethod};
use crate::store::{INVENTORY_FRESH_MS, Inventory};

/// The room's admission, as buyers and `kubectl get wr` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AdmissionState {
    /// Admitting at the configured rate (or everyone, `passthrough`).
    Open,
    /// Admission paused by the operator; the line keeps its order.
    Paused,
    /// Nobody new joins or is admitted; the admitted finish.
    Draining,
    /// The ticket service reports fewer places than `inventory.minPlaces`;
    /// admission re-opens when places come back (expired holds).
    SoldOut,
    /// The queueing method is `reject`: the sale is closed.
    Closed,
}

impl AdmissionState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionState::Open => "open",
            AdmissionState::Paused => "paused",
            AdmissionState::Draining => "draining",
            AdmissionState::SoldOut => "soldOut",
            AdmissionState::Closed => "closed",
        }
    }
}

/// The last inventory read, when fresh enough to act on.
pub fn fresh(inventory: Option<Inventory>, now_ms: i64) -> Option<Inventory> {
    inventory.filter(|i| now_ms - i.at_ms <= INVENTORY_FRESH_MS)
}

/// The state at `now_ms`. Precedence: closed, draining, paused, sold out —
/// the operator's explicit choices before the measured one.
pub fn state(policy: &Policy, inventory: Option<Inventory>, now_ms: i64) -> AdmissionState {
    if policy.method == QueueingMethod::Reject {
        return AdmissionState::Closed;
    }
    if policy.draining {
        return AdmissionState::Draining;
    }
    if policy.paused {
        return AdmissionState::Paused;
    }
    match fresh(inventory, now_ms) {
        Some(read) if policy.min_places > 0 && read.places_left < u64::from(policy.min_places) => {
            AdmissionState::SoldOut
        }
        _ => AdmissionState::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn inventory(places_left: u64, age_ms: i64) -> Option<Inventory> {
        Some(Inventory {
            places_left,
            places_held: 0,
            at_ms: NOW - age_ms,
        })
    }

    #[test]
    fn sold_out_only_on_a_fresh_read_below_the_minimum() {
        let policy = Policy {
            min_places: 1,
            ..Policy::default()
        };
        assert_eq!(
            state(&policy, inventory(0, 500), NOW),
            AdmissionState::SoldOut
        );
        assert_eq!(state(&policy, inventory(1, 500), NOW), AdmissionState::Open);
        assert_eq!(
            state(&policy, inventory(0, INVENTORY_FRESH_MS + 1), NOW),
            AdmissionState::Open,
            "a stale read must not stop the sale"
        );
        assert_eq!(state(&policy, None, NOW), AdmissionState::Open);
        let ignoring = Policy::default();
        assert_eq!(state(&ignoring, inventory(0, 0), NOW), AdmissionState::Open);
    }

    #[test]
    fn the_operators_choices_come_before_the_inventory() {
        let base = Policy {
            min_places: 5,
            ..Policy::default()
        };
        let sold_out = inventory(0, 0);
        let paused = Policy {
            paused: true,
            ..base.clone()
        };
        assert_eq!(state(&paused, sold_out, NOW), AdmissionState::Paused);
        let draining = Policy {
            draining: true,
            ..paused.clone()
        };
        assert_eq!(state(&draining, sold_out, NOW), AdmissionState::Draining);
        let closed = Policy {
            method: QueueingMethod::Reject,
            ..draining
        };
        assert_eq!(state(&closed, sold_out, NOW), AdmissionState::Closed);
    }
}
