//! The room's desired state, built without a client: the admission policy
//! and tier-1 serving parameters the queue reads from Redis, and the entry
//! the edge reads from the KeyValueStore.

use k8s_openapi::jiff::Timestamp;
use urr_crds::EventSpec;
use urr_crds::waiting_room::{Edge, WaitingRoomSpec};
use urr_service_common::policy::{Policy, QueueingMethod};
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
        method: QueueingMethod::parse(room.queueing.method.policy_value()).unwrap_or_default(),
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
/// moment the room is enforced.
pub fn serving_for(
    room: &WaitingRoomSpec,
    activation: &Activation,
    now: Timestamp,
) -> ServingParams {
    ServingParams {
        start: 0,
        per_interval: u64::from(room.admission.serving_rate.per_interval),
        interval_seconds: u64::from(room.admission.serving_rate.interval_seconds),
        epoch: activation.enforce_from.unwrap_or(now).as_second(),
    }
}

/// The room's edge entry, its `kids` left for the edge step to fill in.
pub fn edge_entry(
    namespace: &str,
    name: &str,
    room: &WaitingRoomSpec,
    edge_spec: &Edge,
    activation: &Activation,
    serving: ServingParams,
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
    }
}
