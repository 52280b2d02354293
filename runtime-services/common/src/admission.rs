//! Whether a room lets anyone in, and why not: one type for the queue's
//! answers (`admission` in its JSON and `/internal/stats`), the operator's
//! `status.admission` and `Admitting` condition, and the queue's metrics.
//! The queue's admitter script (`store/lua/tick.lua`) applies the same
//! precedence atomically.

use serde::{Deserialize, Serialize};

use crate::policy::{Policy, QueueingMethod};

/// The room's admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdmissionState {
    /// Admitting at the configured rate (or everyone, `passthrough`).
    #[default]
    Open,
    /// Admission paused by the operator; the line keeps its order.
    Paused,
    /// Nobody new joins or is admitted; the admitted finish.
    Draining,
    /// The ticket service reports fewer places than `inventory.minPlaces`;
    /// admission re-opens when places come back (lapsed holds).
    SoldOut,
    /// The queueing method is `reject`: the sale is closed.
    Closed,
}

impl AdmissionState {
    pub const ALL: [AdmissionState; 5] = [
        AdmissionState::Open,
        AdmissionState::Paused,
        AdmissionState::Draining,
        AdmissionState::SoldOut,
        AdmissionState::Closed,
    ];

    /// As the JSON and the metric label spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionState::Open => "open",
            AdmissionState::Paused => "paused",
            AdmissionState::Draining => "draining",
            AdmissionState::SoldOut => "soldOut",
            AdmissionState::Closed => "closed",
        }
    }

    /// As `status.admission` and the `Admitting` condition's reason spell it.
    pub fn reason(self) -> &'static str {
        match self {
            AdmissionState::Open => "Open",
            AdmissionState::Paused => "Paused",
            AdmissionState::Draining => "Draining",
            AdmissionState::SoldOut => "SoldOut",
            AdmissionState::Closed => "Closed",
        }
    }

    /// What the policy alone asks for, the operator's explicit choices in
    /// precedence: closed, draining, paused, else open (the inventory, which
    /// only the queue reads, may still make an open room sold out).
    pub fn requested(policy: &Policy) -> Self {
        if policy.method == QueueingMethod::Reject {
            AdmissionState::Closed
        } else if policy.draining {
            AdmissionState::Draining
        } else if policy.paused {
            AdmissionState::Paused
        } else {
            AdmissionState::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_choices_in_precedence_closed_first() {
        let mut policy = Policy::default();
        assert_eq!(AdmissionState::requested(&policy), AdmissionState::Open);
        policy.paused = true;
        assert_eq!(AdmissionState::requested(&policy), AdmissionState::Paused);
        policy.draining = true;
        assert_eq!(AdmissionState::requested(&policy), AdmissionState::Draining);
        policy.method = QueueingMethod::Reject;
        assert_eq!(AdmissionState::requested(&policy), AdmissionState::Closed);
    }

    #[test]
    fn both_spellings_round_trip() {
        for state in AdmissionState::ALL {
            let json = serde_json::to_value(state).expect("json");
            assert_eq!(json, state.as_str());
            assert_eq!(
                serde_json::from_value::<AdmissionState>(json).expect("back"),
                state
            );
            assert!(state.reason().eq_ignore_ascii_case(state.as_str()));
        }
    }
}
