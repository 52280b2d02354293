//! When a room holds visitors back, and from when every edge enforces it.
//!
//! | mode | active | `enforceFrom` |
//! |---|---|---|
//! | `Off` | never | — |
//! | `Always` | always | `now + margin` when it turns on, then kept |
//! | `Scheduled` | from `startAt` until `endAt` | `startAt`, published early so every edge flips exactly then (at least `now + margin` if published late) |
//! | `Auto` | once queue depth, active users or arrivals per second cross a threshold, until the queue has stayed empty and every figure below its threshold for the cool-down | `now + margin` when it turns on |
//!
//! `margin` is `spec.edge.propagationMarginSeconds`: a KVS write takes
//! seconds to ~30 s to reach every edge, so activation is published in the
//! future and all edges flip at the same moment.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use urr_crds::waiting_room::{ActivationMode, WaitingRoomSpec, WaitingRoomStatus};

use crate::scaling::Load;

/// How often an `Auto` room looks at the load.
pub const AUTO_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    pub active: bool,
    /// Unix seconds; `None` when inactive.
    pub enforce_from: Option<Timestamp>,
    /// When to look again for a time- or load-driven change.
    pub recheck_after: Option<Duration>,
}

fn margin(spec: &WaitingRoomSpec) -> SignedDuration {
    SignedDuration::from_secs(
        spec.edge
            .as_ref()
            .map_or(0, |e| i64::from(e.propagation_margin_seconds)),
    )
}

fn until(now: Timestamp, then: Timestamp) -> Option<Duration> {
    Duration::try_from(then.duration_since(now))
        .ok()
        .filter(|d| !d.is_zero())
}

/// `drained_since` is when the queue was last seen empty while active (kept
/// by the caller between reconciles); the function returns the new value.
pub fn decide(
    spec: &WaitingRoomSpec,
    previous: &WaitingRoomStatus,
    now: Timestamp,
    load: Option<Load>,
    drained_since: Option<Timestamp>,
) -> (Activation, Option<Timestamp>) {
    let was_active = previous.active == Some(true);
    let kept = previous
        .enforce_from
        .as_ref()
        .map(|t| t.0)
        .filter(|_| was_active);
    let turn_on = |earliest: Timestamp| Some(kept.unwrap_or(earliest.max(now + margin(spec))));
    let activation = &spec.activation;
    match activation.mode {
        ActivationMode::Off => (
            Activation {
                active: false,
                enforce_from: None,
                recheck_after: None,
            },
            None,
        ),
        ActivationMode::Always => (
            Activation {
                active: true,
                enforce_from: turn_on(now),
                recheck_after: None,
            },
            None,
        ),
        ActivationMode::Scheduled => {
            let Some(start) = activation.start_at.as_ref().map(|t| t.0) else {
                return (
                    Activation {
                        active: false,
                        enforce_from: None,
                        recheck_after: None,
                    },
                    None,
                );
            };
            let end = activation.end_at.as_ref().map(|t| t.0);
            if end.is_some_and(|end| now >= end) {
                return (
                    Activation {
                        active: false,
                        enforce_from: None,
                        recheck_after: None,
                    },
                    None,
                );
            }
            // Published ahead of `startAt`, it is the moment itself: every edge flips then.
            // A moment already published stays (edges may have flipped, and a
            // margin-pushed one must not drift with every reconcile) unless the
            // schedule moved away from it: then it is published anew.
            let fresh = start.max(now + margin(spec));
            let enforce_from = match kept {
                Some(kept) if kept <= now || (kept >= start && kept <= now + margin(spec)) => {
                    Some(kept)
                }
                _ => Some(fresh),
            };
            (
                Activation {
                    active: true,
                    enforce_from,
                    recheck_after: end.and_then(|end| until(now, end)),
                },
                None,
            )
        }
        ActivationMode::Auto => {
            let thresholds = activation.auto;
            let crossed = match (load, thresholds) {
                (Some(load), Some(auto)) => {
                    auto.queue_depth_above
                        .is_some_and(|t| load.queue_depth > u64::from(t))
                        || auto
                            .active_users_above
                            .is_some_and(|t| load.active_users > u64::from(t))
                        || auto
                            .arrivals_per_second_above
                            .is_some_and(|t| load.arrivals_per_second > u64::from(t))
                }
                _ => false,
            };
            let cooldown = SignedDuration::from_secs(
                thresholds.map_or(300, |a| i64::from(a.cooldown_seconds)),
            );
            let recheck_after = Some(AUTO_INTERVAL);
            if !was_active {
                return if crossed {
                    (
                        Activation {
                            active: true,
                            enforce_from: turn_on(now),
                            recheck_after,
                        },
                        None,
                    )
                } else {
                    (
                        Activation {
                            active: false,
                            enforce_from: None,
                            recheck_after,
                        },
                        None,
                    )
                };
            }
            // Active: stays on until the queue has been empty for the whole cool-down.
            // Without stats it stays as it is (fail-safe for the sale, and the edge fails open anyway).
            let drained = load.is_some_and(|l| l.queue_depth == 0) && !crossed;
            let since = if drained {
                Some(drained_since.unwrap_or(now))
            } else {
                None
            };
            if since.is_some_and(|since| now.duration_since(since) >= cooldown) {
                (
                    Activation {
                        active: false,
                        enforce_from: None,
                        recheck_after,
                    },
                    None,
                )
            } else {
                (
                    Activation {
                        active: true,
                        enforce_from: kept.or(Some(now + margin(spec))),
                        recheck_after,
                    },
                    since,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::at;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn room(yaml: &str) -> WaitingRoomSpec {
        let base = "eventRef: {name: e}\nedge: {keyValueStoreName: s, signingKeyRef: {name: k, key: k}, signingKeyId: k1, propagationMarginSeconds: 30}\n";
        serde_yaml::from_str(&format!("{base}{yaml}")).expect("spec")
    }

    /// Found by the flash sale on a real API server: a room published for
    /// 12 December kept that moment after its schedule was patched to start
    /// now, so the edge never gated the sale.
    #[test]
    fn a_moved_schedule_moves_a_published_moment_that_has_not_come_yet() {
        let spec = room(&format!(
            "activation: {{mode: Scheduled, startAt: \"{}\"}}\n",
            at(-60)
        ));
        let previous = active_since(864_000);
        let (decision, _) = decide(&spec, &previous, at(0), None, None);
        assert_eq!(decision.enforce_from, Some(at(30)), "now + the 30 s margin");
        // One already enforcing stays where it is.
        let previous = active_since(-10);
        let (decision, _) = decide(&spec, &previous, at(0), None, None);
        assert_eq!(decision.enforce_from, Some(at(-10)));
        // A schedule moved later than a moment not yet come moves it too.
        let later = room(&format!(
            "activation: {{mode: Scheduled, startAt: \"{}\"}}\n",
            at(3_600)
        ));
        let (decision, _) = decide(&later, &active_since(20), at(0), None, None);
        assert_eq!(decision.enforce_from, Some(at(3_600)));
        // A margin-pushed moment does not drift on the next reconcile.
        let (decision, _) = decide(&spec, &active_since(30), at(5), None, None);
        assert_eq!(decision.enforce_from, Some(at(30)));
    }

    fn active_since(enforce_from: i64) -> WaitingRoomStatus {
        WaitingRoomStatus {
            active: Some(true),
            enforce_from: Some(Time(at(enforce_from))),
            ..WaitingRoomStatus::default()
        }
    }

    #[test]
    fn always_turns_on_after_the_margin_and_keeps_its_moment() {
        let spec = room("activation: {mode: Always}");
        let (first, _) = decide(&spec, &WaitingRoomStatus::default(), at(0), None, None);
        assert_eq!((first.active, first.enforce_from), (true, Some(at(30))));
        let (later, _) = decide(&spec, &active_since(30), at(500), None, None);
        assert_eq!(
            later.enforce_from,
            Some(at(30)),
            "republishing does not move the moment"
        );
    }

    #[test]
    fn off_is_off() {
        let (off, _) = decide(
            &room("activation: {mode: Off}"),
            &active_since(0),
            at(0),
            None,
            None,
        );
        assert_eq!((off.active, off.enforce_from), (false, None));
    }

    #[test]
    fn scheduled_flips_at_start_and_ends_at_end() {
        let start = "2027-01-15T08:00:00Z";
        let spec = room(&format!(
            "activation: {{mode: Scheduled, startAt: \"{start}\", endAt: \"2027-01-15T10:00:00Z\"}}"
        ));
        let start: Timestamp = start.parse().expect("time");
        let (early, _) = decide(
            &spec,
            &WaitingRoomStatus::default(),
            start - SignedDuration::from_hours(1),
            None,
            None,
        );
        assert_eq!(
            (early.active, early.enforce_from),
            (true, Some(start)),
            "published ahead, enforced from startAt exactly"
        );
        assert_eq!(early.recheck_after, Some(Duration::from_secs(3 * 3600)));
        let (late, _) = decide(
            &spec,
            &WaitingRoomStatus::default(),
            start + SignedDuration::from_secs(10),
            None,
            None,
        );
        assert_eq!(
            late.enforce_from,
            Some(start + SignedDuration::from_secs(40)),
            "published late: now + margin"
        );
        let end: Timestamp = "2027-01-15T10:00:00Z".parse().expect("time");
        let (over, _) = decide(
            &spec,
            &WaitingRoomStatus {
                active: Some(true),
                ..Default::default()
            },
            end,
            None,
            None,
        );
        assert!(!over.active);
    }

    #[test]
    fn auto_turns_on_at_a_threshold_and_off_after_a_drained_cooldown() {
        let spec = room(
            "activation: {mode: Auto, auto: {queueDepthAbove: 1000, activeUsersAbove: 800, cooldownSeconds: 120}}",
        );
        let quiet = Load::crowd(10, 100);
        let busy = Load::crowd(5000, 100);
        let full = Load::crowd(0, 900);
        let empty = Load::crowd(0, 50);
        let none = WaitingRoomStatus::default();
        assert!(!decide(&spec, &none, at(0), Some(quiet), None).0.active);
        assert!(
            !decide(&spec, &none, at(0), None, None).0.active,
            "no stats: does not turn on"
        );
        let (on, _) = decide(&spec, &none, at(0), Some(busy), None);
        assert_eq!((on.active, on.enforce_from), (true, Some(at(30))));
        assert!(
            decide(&spec, &none, at(0), Some(full), None).0.active,
            "active users threshold"
        );
        // Draining: the cool-down runs from the first empty look.
        let on_status = active_since(30);
        let (still, since) = decide(&spec, &on_status, at(100), Some(empty), None);
        assert_eq!((still.active, since), (true, Some(at(100))));
        let (still, since) = decide(&spec, &on_status, at(219), Some(empty), since);
        assert!(still.active);
        let (off, since) = decide(&spec, &on_status, at(220), Some(empty), since);
        assert_eq!((off.active, since), (false, None));
        // A refill resets the cool-down.
        let (refilled, since) = decide(&spec, &on_status, at(150), Some(quiet), Some(at(100)));
        assert_eq!((refilled.active, since), (true, None));
        // Stats lost while active: stays active.
        assert!(
            decide(&spec, &on_status, at(10_000), None, Some(at(0)))
                .0
                .active
        );
    }

    /// Issue 18 item 5: while the room is off every join is admitted at
    /// once, so nobody waits and the depth stays 0; a surge of arrivals is
    /// what turns the room on, and only a calm (arrivals back under the
    /// threshold, nobody waiting) for the whole cool-down turns it off.
    #[test]
    fn a_surge_of_arrivals_turns_auto_on_and_a_calm_turns_it_off() {
        let spec = room(
            "activation: {mode: Auto, auto: {arrivalsPerSecondAbove: 200, cooldownSeconds: 60}}",
        );
        let load = |arrivals| Load {
            queue_depth: 0,
            active_users: 40,
            arrivals_per_second: arrivals,
        };
        let none = WaitingRoomStatus::default();
        assert!(!decide(&spec, &none, at(0), Some(load(150)), None).0.active);
        let (on, _) = decide(&spec, &none, at(0), Some(load(900)), None);
        assert_eq!((on.active, on.enforce_from), (true, Some(at(30))));
        let on_status = active_since(30);
        // Still surging, with nobody waiting yet: stays on, no cool-down.
        let (still, since) = decide(&spec, &on_status, at(40), Some(load(900)), None);
        assert_eq!((still.active, since), (true, None));
        // The calm starts the cool-down; a new surge inside it resets it.
        let (still, since) = decide(&spec, &on_status, at(100), Some(load(20)), None);
        assert_eq!((still.active, since), (true, Some(at(100))));
        let (still, reset) = decide(&spec, &on_status, at(130), Some(load(500)), since);
        assert_eq!((still.active, reset), (true, None));
        let (still, since) = decide(&spec, &on_status, at(140), Some(load(20)), reset);
        assert_eq!(since, Some(at(140)));
        assert!(still.active);
        let (off, _) = decide(&spec, &on_status, at(200), Some(load(20)), since);
        assert!(!off.active, "a calm for the whole cool-down turns it off");
    }
}
