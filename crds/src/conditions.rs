//! Status conditions, built in one place so every controller writes them the
//! same way (Kubernetes API conventions: `type`, `status`, `reason`,
//! `message`, `lastTransitionTime`, `observedGeneration`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The object is doing what its spec asks.
pub const READY: &str = "Ready";
/// The operator is still moving the world towards the spec.
pub const PROGRESSING: &str = "Progressing";
/// Running, but something it depends on misbehaves (stats unreachable, ...).
pub const DEGRADED: &str = "Degraded";
/// The WaitingRoom's entry is written to the CloudFront KeyValueStore.
pub const EDGE_SYNCED: &str = "EdgeSynced";
/// The WaitingRoom's `eventRef` resolves.
pub const EVENT_FOUND: &str = "EventFound";

/// The WaitingRoom admits: `True` (reason `Open`) or `False` with the
/// reason why not (`Paused`, `Draining`, `SoldOut`, `Closed`).
pub const ADMITTING: &str = "Admitting";

/// The WaitingRoom's `spec.page` template is checked and reaches the queue
/// (`True`, reason `TemplateValid`), or why not: `ConfigMapMissing`,
/// `TemplateKeyMissing`, or the template's own reason (`TemplateTooLarge`,
/// `UnknownVariable`, `ForeignScript`, `BreaksCsp`, ...; see
/// `urr_service_common::page_template`). Absent without `spec.page`.
pub const PAGE_TEMPLATE_VALID: &str = "PageTemplateValid";

/// Reason of `Ready=False` when [`crate::Validate`] refuses the spec.
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Reason of `Ready=False` when another WaitingRoom of the same edge holds an
/// overlapping protected prefix; the room is not published.
pub const REASON_PATH_CONFLICT: &str = "PathConflict";
/// Reason of `Ready=False` when a signing key's Secret holds fewer than
/// `limits::MIN_SIGNING_KEY_BYTES` bytes; the room is not published.
pub const REASON_WEAK_SIGNING_KEY: &str = "WeakSigningKey";

/// `True`, `False` or `Unknown`, as the API conventions spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// Builds a condition observed at `now` for `generation`.
pub fn new(
    type_: &str,
    status: Status,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now,
    }
}

/// Inserts or replaces the condition of the same type. `lastTransitionTime`
/// only moves when the status changes, as the conventions require; reason,
/// message and generation are always refreshed. Returns whether anything
/// changed, so a controller can skip a no-op status write.
pub fn upsert(conditions: &mut Vec<Condition>, mut condition: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            let changed = *existing != condition;
            *existing = condition;
            changed
        }
        None => {
            conditions.push(condition);
            true
        }
    }
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut conditions = Vec::new();
        assert!(upsert(
            &mut conditions,
            new(READY, Status::False, "Pending", "a", Some(1), at(10))
        ));
        // Same status, new message: the message changes, the time does not.
        assert!(upsert(
            &mut conditions,
            new(READY, Status::False, "Pending", "b", Some(2), at(20))
        ));
        let ready = find(&conditions, READY).expect("ready");
        assert_eq!(ready.last_transition_time, at(10));
        assert_eq!(ready.message, "b");
        assert_eq!(ready.observed_generation, Some(2));
        // A status flip moves the time.
        assert!(upsert(
            &mut conditions,
            new(READY, Status::True, "Running", "", Some(2), at(30))
        ));
        assert_eq!(
            find(&conditions, READY)
                .expect("ready")
                .last_transition_time,
            at(30)
        );
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn identical_condition_is_not_a_change() {
        let mut conditions = vec![new(DEGRADED, Status::False, "Ok", "", Some(1), at(10))];
        assert!(!upsert(
            &mut conditions,
            new(DEGRADED, Status::False, "Ok", "", Some(1), at(99))
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));
    }
}
