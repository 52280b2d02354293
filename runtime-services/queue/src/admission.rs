//! Whether the room lets anyone in right now: the policy's request
//! ([`AdmissionState::requested`], shared with the operator) and, for an
//! open room, the inventory the admitter read from the ticket service. The
//! admitter's script (`store/lua/tick.lua`) applies the same rule atomically.

pub use urr_service_common::admission::AdmissionState;

use crate::policy::Policy;
use crate::store::{INVENTORY_FRESH_MS, Inventory};

/// The last inventory read, when fresh enough to act on.
pub fn fresh(inventory: Option<Inventory>, now_ms: i64) -> Option<Inventory> {
    inventory.filter(|i| now_ms - i.at_ms <= INVENTORY_FRESH_MS)
}

/// The state at `now_ms`: the operator's choices first, then the measured
/// sold out.
pub fn state(policy: &Policy, inventory: Option<Inventory>, now_ms: i64) -> AdmissionState {
    match (AdmissionState::requested(policy), fresh(inventory, now_ms)) {
        (AdmissionState::Open, Some(read))
            if policy.min_places > 0 && read.places_left < u64::from(policy.min_places) =>
        {
            AdmissionState::SoldOut
        }
        (requested, _) => requested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::QueueingMethod;

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
