//! The room's desired state, built without a client: the admission policy
//! and tier-1 serving parameters the queue reads from Redis, and the entry
//! the edge reads from the KeyValueStore.

use k8s_openapi::jiff::Timestamp;
use urr_crds::EventSpec;
use urr_crds::waiting_room::QueueingMethod;
use urr_crds::waiting_room::{Edge, Tier1Counter, WaitingRoomSpec};
use urr_service_common::edge::EdgeMethod;
use urr_service_common::policy::{Policy, QueueingMethod as PolicyMethod};
use urr_service_common::serving::ServingParams;

use super::activation::Activation;
use crate::edge::{self, EdgeEntry};

/// The policy the queue service reads, from the room and its Event.
pub fn policy_for(room: &WaitingRoomSpec, event: &EventSpec, activation: &Activation) -> Policy {
    let open = event.sales_open_at.0.as_second();
    Policy {
        active: activation.active,
        users_per_second: room.admission.users_per_second,
        max_active_users: room.admission.max_active_users,
        entry_token_ttl_seconds: room.admission.entry_token_ttl_seconds,
        sales_open_at: open,
        pre_queue_opens_at: open - i64::from(room.pre_queue.opens_minutes_before) * 60,
        randomize_at_open: room.pre_queue.randomize_at_open,
        // Chained tiers: while the edge gates, a join needs a served pass, so
        // the queue API is no way around the line at the edge.
        pass_required_from: match (&room.edge, activation.enforce_from) {
            (Some(_), Some(from)) if activation.active => from.as_second().max(1),
            _ => 0,
        },
        method: match room.queueing.method {
            QueueingMethod::Fifo => PolicyMethod::Fifo,
            QueueingMethod::Random => PolicyMethod::Random,
            QueueingMethod::Passthrough => PolicyMethod::Passthrough,
            QueueingMethod::Reject => PolicyMethod::Reject,
        },
        paused: room.control.paused,
        draining: room.control.draining,
        min_places: room.inventory.min_places,
        // Validated before (an invalid one never gets here); parsed again so
        // a malformed entry can only be skipped, never block everyone.
        blocked_addresses: room
            .control
            .block_addresses
            .iter()
            .filter_map(|net| parse_network(net))
            .collect(),
        session_max_seconds: room.admission.session_max_seconds.unwrap_or(0),
        end_session_on_order: room.admission.end_session_on_order,
        invites_until: room
            .invites
            .as_ref()
            .map_or(0, |i| i.valid_until.0.as_second()),
    }
}

/// A CIDR, or one address as its /32 or /128.
pub fn parse_network(value: &str) -> Option<ipnet::IpNet> {
    value.parse().ok().or_else(|| {
        value
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// Who the admitter should kick on its next tick: the listed users not yet
/// kicked for this appearance in the list, and every blocked user (a no-op
/// for one who is not in).
pub fn kicks(room: &WaitingRoomSpec, kicked_before: &[String]) -> Vec<String> {
    let mut users: Vec<String> = room
        .control
        .kick_users
        .iter()
        .filter(|u| !kicked_before.contains(u))
        .chain(&room.control.block_users)
        .cloned()
        .collect();
    users.sort();
    users.dedup();
    users
}

/// The tier-1 counter: `perInterval` numbers every `intervalSeconds` from the
/// moment the room is enforced, standing still while `spec.control.paused`
/// (from `pausedAt`, published ahead by the propagation margin) and going
/// on from the frozen number after a resume (never back: every edge, with
/// the old entry or the new, shows the frozen number until counting resumes).
/// Returns the parameters and the pause state to keep in the status.
pub fn serving_for(
    room: &WaitingRoomSpec,
    activation: &Activation,
    previous: Option<Tier1Counter>,
    now: Timestamp,
) -> (ServingParams, Tier1Counter) {
    let margin = room
        .edge
        .as_ref()
        .map_or(0, |e| i64::from(e.propagation_margin_seconds));
    let enforce_from = activation.enforce_from.unwrap_or(now).as_second();
    let previous = previous.unwrap_or_default();
    let mut params = ServingParams {
        start: 0,
        per_interval: u64::from(room.admission.serving_rate.per_interval),
        interval_seconds: u64::from(room.admission.serving_rate.interval_seconds),
        epoch: enforce_from,
        paused_at: None,
    };
    // A resume of an earlier activation (the room went off and on since)
    // no longer applies.
    let mut state = match (previous.resumed_start, previous.resumed_epoch) {
        (Some(start), Some(epoch)) if epoch >= enforce_from => {
            params.start = start;
            params.epoch = epoch;
            Tier1Counter {
                resumed_start: Some(start),
                resumed_epoch: Some(epoch),
                ..Tier1Counter::default()
            }
        }
        _ => Tier1Counter::default(),
    };
    let now = now.as_second();
    match (room.control.paused, previous.paused_at) {
        (true, paused_at) => {
            let paused_at = paused_at.unwrap_or(now + margin);
            params.paused_at = Some(paused_at);
            state.paused_at = Some(paused_at);
        }
        (false, Some(paused_at)) => {
            let frozen = ServingParams {
                paused_at: Some(paused_at),
                ..params
            }
            .serving_at(paused_at);
            params.start = frozen;
            params.epoch = (now + margin).max(paused_at);
            state.resumed_start = Some(frozen);
            state.resumed_epoch = Some(params.epoch);
        }
        (false, None) => {}
    }
    (params, state)
}

/// The room's edge entry, its `kids` left for the edge step to fill in.
pub fn edge_entry(
    namespace: &str,
    name: &str,
    room: &WaitingRoomSpec,
    edge_spec: &Edge,
    activation: &Activation,
    serving: ServingParams,
    sold_out: bool,
) -> EdgeEntry {
    EdgeEntry {
        v: edge::SCHEMA_VERSION,
        room: format!("{namespace}/{name}"),
        active: activation.active,
        enforce_from: activation.enforce_from.map_or(0, |t| t.as_second()),
        protected: room.paths.protected.clone(),
        bypass: room.paths.bypass.clone(),
        waiting_page: format!("{}{}", edge_spec.waiting_page_path, name),
        serving,
        kids: Vec::new(),
        case_insensitive: room.paths.case_insensitive,
        method: match room.queueing.method {
            QueueingMethod::Passthrough => Some(EdgeMethod::Passthrough),
            QueueingMethod::Reject => Some(EdgeMethod::Reject),
            QueueingMethod::Fifo | QueueingMethod::Random => None,
        },
        hosts: room.paths.hosts.clone(),
        sold_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(paused: bool) -> WaitingRoomSpec {
        let mut spec: WaitingRoomSpec = serde_json::from_value(serde_json::json!({
            "eventRef": {"name": "aurora"},
            "admission": {"servingRate": {"perInterval": 100, "intervalSeconds": 10}},
        }))
        .expect("a minimal spec");
        spec.control.paused = paused;
        spec
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("a time")
    }

    #[test]
    fn a_paused_counter_freezes_and_resumes_from_the_frozen_number_never_back() {
        let activation = Activation {
            active: true,
            enforce_from: Some(at(1_000)),
            recheck_after: None,
        };
        let (running, state) = serving_for(&room(false), &activation, None, at(1_050));
        assert_eq!(running.serving_at(1_050), 500);
        assert_eq!(state, Tier1Counter::default());

        // Paused at 1 055 (no edge: no margin); kept on the next reconcile.
        let (paused, state) = serving_for(&room(true), &activation, Some(state), at(1_055));
        assert_eq!(state.paused_at, Some(1_055));
        let (again, state) = serving_for(&room(true), &activation, Some(state), at(1_300));
        assert_eq!(again, paused, "every reconcile publishes the same pause");
        assert_eq!(paused.serving_at(1_300), 500, "frozen");

        // Resumed at 1 400: counting goes on from 500, not from 3 900.
        let (resumed, state) = serving_for(&room(false), &activation, Some(state), at(1_400));
        assert_eq!(state.paused_at, None);
        assert_eq!(resumed.serving_at(1_400), 500);
        assert_eq!(resumed.serving_at(1_410), 600);
        let (later, _) = serving_for(&room(false), &activation, Some(state), at(1_500));
        assert_eq!(later, resumed, "the resume is kept");

        // A new activation forgets the old resume.
        let again_on = Activation {
            enforce_from: Some(at(5_000)),
            ..activation
        };
        let (fresh, state) = serving_for(&room(false), &again_on, Some(state), at(5_000));
        assert_eq!((fresh.start, fresh.epoch), (0, 5_000));
        assert_eq!(state, Tier1Counter::default());
    }
}
