//! The admission policy the operator writes to the Redis hash
//! `urr:{event}:policy` (from the WaitingRoom and Event specs) and the queue
//! service reads on every admitter tick, so a change applies within one tick.
//!
//! | field | meaning | default when absent |
//! |---|---|---|
//! | `active` | `1`: hold users in the queue; `0`: admit on join | `1` |
//! | `usersPerSecond` | admission rate | 50 |
//! | `maxActiveUsers` | concurrent users with a valid entry token | 1000 |
//! | `entryTokenTtlSeconds` | entry token lifetime | 600 |
//! | `salesOpenAt` | Unix seconds; nobody is admitted before | 0 (open) |
//! | `preQueueOpensAt` | Unix seconds; joins before it are refused | 0 |
//! | `randomizeAtOpen` | `1`: shuffle the pre-queue at open | `1` |
//! | `passRequiredFrom` | Unix seconds from which a join needs a served `urr-vwr-token` (the edge gates); `0`: never | `0` |
//! | `method` | queueing method: `fifo`, `random`, `passthrough`, `reject` ([`QueueingMethod`]) | `fifo` |
//! | `paused` | `1`: nobody is admitted (joins still queue) | `0` |
//! | `draining` | `1`: nobody new is admitted or joins; the admitted finish | `0` |
//! | `minPlaces` | admission stops while the ticket service reports fewer places left; `0`: inventory ignored | `0` |
//! | `blockedAddresses` | comma-separated CIDRs whose joins and numbers are refused | empty |
//! | `sessionMaxSeconds` | an admitted user's session renews (by `entryTokenTtlSeconds`) while they are active, up to this long after admission; `0`: no renewal | `0` |
//! | `endSessionOnOrder` | `1`: a completed order ends its buyer's session (the ticket service signals it in `urr:{event}:session-ended`) | `1` |
//! | `invitesUntil` | Unix seconds until which invite codes are taken (`spec.invites.validUntil`); `0`: the room takes none | `0` |
//!
//! Beside it, the operator keeps the set `urr:{event}:blocked` (user ids
//! refused at join) and adds to `urr:{event}:kick` (user ids the admitter
//! removes from the queue and the active set, revoking their entry tokens);
//! the queue keeps `urr:{event}:inventory` (places left, read from the ticket
//! service by the admitter) and `urr:{event}:invites` (code id → the user who
//! redeemed it: each code once).
//!
//! A missing or unreadable field falls back to its default rather than
//! stopping the sale: the operator is not on the hot path.

use std::collections::HashMap;

use crate::serving::ServingParams;

/// The Redis hash of an event's admission policy (hash-tagged like every key of the event).
pub fn policy_key(event: &str) -> String {
    format!("urr:{{{event}}}:policy")
}

/// The Redis hash of an event's tier-1 serving parameters.
pub fn serving_key(event: &str) -> String {
    format!("urr:{{{event}}}:edge")
}

/// The set of blocked user ids (written by the operator, whole).
pub fn blocked_users_key(event: &str) -> String {
    format!("urr:{{{event}}}:blocked")
}

/// The set of user ids to remove from the room (added by the operator,
/// emptied by the admitter as it kicks them).
pub fn kick_key(event: &str) -> String {
    format!("urr:{{{event}}}:kick")
}

/// The set of users whose order completed (the ticket service adds them,
/// the queue's admitter ends their sessions).
pub fn session_end_key(event: &str) -> String {
    format!("urr:{{{event}}}:session-ended")
}

/// The hash `{placesLeft, atMs}` of the ticket service's last inventory read.
pub fn inventory_key(event: &str) -> String {
    format!("urr:{{{event}}}:inventory")
}

/// Hash of the invite codes redeemed: code id → the user who did.
pub fn invites_key(event: &str) -> String {
    format!("urr:{{{event}}}:invites")
}

/// How the queue orders who gets in (`WaitingRoom.spec.queueing.method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum QueueingMethod {
    /// First come, first served (after the pre-queue draw at open).
    #[default]
    Fifo,
    /// Each tick admits uniformly among those waiting: the lowest
    /// SHA-1(seed ‖ user) first, the seed committed to up front and revealed
    /// when the room stops being random.
    Random,
    /// The room is on but admits everyone at join, counting them.
    Passthrough,
    /// The sale is closed: joins are refused (403 `sale-closed`), nobody is admitted.
    Reject,
}

impl QueueingMethod {
    pub const ALL: [QueueingMethod; 4] = [
        QueueingMethod::Fifo,
        QueueingMethod::Random,
        QueueingMethod::Passthrough,
        QueueingMethod::Reject,
    ];

    /// The policy hash value (and the Lua scripts' spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueingMethod::Fifo => "fifo",
            QueueingMethod::Random => "random",
            QueueingMethod::Passthrough => "passthrough",
            QueueingMethod::Reject => "reject",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == value)
    }
}

/// The hash fields of serving parameters (what [`serving_params`] reads).
pub fn serving_fields(params: &ServingParams) -> Vec<(&'static str, String)> {
    vec![
        ("start", params.start.to_string()),
        ("perInterval", params.per_interval.to_string()),
        ("intervalSeconds", params.interval_seconds.to_string()),
        ("epoch", params.epoch.to_string()),
        // Empty when running: the hash is written whole, so a resumed
        // counter must overwrite the old pause.
        (
            "pausedAt",
            params.paused_at.map(|t| t.to_string()).unwrap_or_default(),
        ),
    ]
}

pub const FIELDS: [&str; 16] = [
    "active",
    "usersPerSecond",
    "maxActiveUsers",
    "entryTokenTtlSeconds",
    "salesOpenAt",
    "preQueueOpensAt",
    "randomizeAtOpen",
    "passRequiredFrom",
    "method",
    "paused",
    "draining",
    "minPlaces",
    "blockedAddresses",
    "sessionMaxSeconds",
    "endSessionOnOrder",
    "invitesUntil",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub active: bool,
    pub users_per_second: u32,
    pub max_active_users: u32,
    pub entry_token_ttl_seconds: u32,
    pub sales_open_at: i64,
    pub pre_queue_opens_at: i64,
    pub randomize_at_open: bool,
    /// Unix seconds from which joining tier 2 needs a served tier-1 pass
    /// (the chained tiers: while the edge gates, the queue API cannot be
    /// reached around it); 0 = never.
    pub pass_required_from: i64,
    pub method: QueueingMethod,
    /// Nobody is admitted; joins still queue (kubectl: `spec.control.paused`).
    pub paused: bool,
    /// Nobody new joins or is admitted; the admitted finish.
    pub draining: bool,
    /// Admission stops while fewer places than this are left; 0 = inventory ignored.
    pub min_places: u32,
    /// Joins and numbers from these networks are refused.
    pub blocked_addresses: Vec<ipnet::IpNet>,
    /// Renewal limit of a session after admission; 0 = no renewal.
    pub session_max_seconds: u32,
    /// A completed order ends its buyer's session, freeing the slot.
    pub end_session_on_order: bool,
    /// Invite codes are taken until this Unix second; 0 = none are.
    pub invites_until: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            active: true,
            users_per_second: 50,
            max_active_users: 1000,
            entry_token_ttl_seconds: 600,
            sales_open_at: 0,
            pre_queue_opens_at: 0,
            randomize_at_open: true,
            pass_required_from: 0,
            method: QueueingMethod::Fifo,
            paused: false,
            draining: false,
            min_places: 0,
            blocked_addresses: Vec::new(),
            session_max_seconds: 0,
            end_session_on_order: true,
            invites_until: 0,
        }
    }
}

impl Policy {
    /// Builds a policy from the hash fields (`HGETALL`).
    pub fn from_fields(fields: &HashMap<String, String>) -> Self {
        let defaults = Policy::default();
        let number = |name: &str, default: u32, min: u32| {
            fields
                .get(name)
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|v| *v >= min)
                .unwrap_or(default)
        };
        let time = |name: &str| {
            fields
                .get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let flag = |name: &str, default: bool| match fields.get(name).map(String::as_str) {
            Some("1" | "true") => true,
            Some("0" | "false") => false,
            _ => default,
        };
        Policy {
            active: flag("active", defaults.active),
            users_per_second: number("usersPerSecond", defaults.users_per_second, 1),
            max_active_users: number("maxActiveUsers", defaults.max_active_users, 1),
            entry_token_ttl_seconds: number(
                "entryTokenTtlSeconds",
                defaults.entry_token_ttl_seconds,
                1,
            ),
            sales_open_at: time("salesOpenAt"),
            pre_queue_opens_at: time("preQueueOpensAt"),
            randomize_at_open: flag("randomizeAtOpen", defaults.randomize_at_open),
            pass_required_from: time("passRequiredFrom"),
            method: fields
                .get("method")
                .and_then(|m| QueueingMethod::parse(m))
                .unwrap_or_default(),
            paused: flag("paused", false),
            draining: flag("draining", false),
            min_places: number("minPlaces", 0, 0),
            // A malformed entry is skipped, not the whole list: the others
            // stay blocked.
            blocked_addresses: fields
                .get("blockedAddresses")
                .map(|list| {
                    list.split(',')
                        .filter_map(|net| net.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
            session_max_seconds: number("sessionMaxSeconds", 0, 0),
            end_session_on_order: flag("endSessionOnOrder", true),
            invites_until: time("invitesUntil"),
        }
    }

    /// The hash fields of this policy (what the operator writes; tests use it too).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("active", u8::from(self.active).to_string()),
            ("usersPerSecond", self.users_per_second.to_string()),
            ("maxActiveUsers", self.max_active_users.to_string()),
            (
                "entryTokenTtlSeconds",
                self.entry_token_ttl_seconds.to_string(),
            ),
            ("salesOpenAt", self.sales_open_at.to_string()),
            ("preQueueOpensAt", self.pre_queue_opens_at.to_string()),
            (
                "randomizeAtOpen",
                u8::from(self.randomize_at_open).to_string(),
            ),
            ("passRequiredFrom", self.pass_required_from.to_string()),
            ("method", self.method.as_str().to_owned()),
            ("paused", u8::from(self.paused).to_string()),
            ("draining", u8::from(self.draining).to_string()),
            ("minPlaces", self.min_places.to_string()),
            (
                "blockedAddresses",
                self.blocked_addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("sessionMaxSeconds", self.session_max_seconds.to_string()),
            (
                "endSessionOnOrder",
                u8::from(self.end_session_on_order).to_string(),
            ),
            ("invitesUntil", self.invites_until.to_string()),
        ]
    }

    /// Whether `address` is in a blocked network.
    pub fn address_blocked(&self, address: std::net::IpAddr) -> bool {
        self.blocked_addresses
            .iter()
            .any(|net| net.contains(&address))
    }

    /// Whether a join at `now` (Unix s) needs a served tier-1 pass.
    pub fn pass_required(&self, now: i64) -> bool {
        self.pass_required_from > 0 && now >= self.pass_required_from
    }

    /// Whether `now` (Unix s) is in the pre-queue window: joins are accepted,
    /// order is drawn at open.
    pub fn in_pre_queue(&self, now: i64) -> bool {
        now < self.sales_open_at
    }
}

/// Tier-1 serving parameters from the `urr:{event}:edge` hash, written by the
/// operator with the same values it publishes to the KeyValueStore. Absent
/// fields give a counter that serves everyone (fail-open, like the edge).
pub fn serving_params(fields: &HashMap<String, String>) -> ServingParams {
    let get = |name: &str| fields.get(name).and_then(|v| v.parse::<i64>().ok());
    ServingParams {
        start: get("start").unwrap_or(i64::MAX).max(0) as u64,
        per_interval: get("perInterval").unwrap_or(500).max(0) as u64,
        interval_seconds: get("intervalSeconds").unwrap_or(10).max(1) as u64,
        epoch: get("epoch").unwrap_or(0),
        paused_at: get("pausedAt"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_hash_gives_defaults() {
        assert_eq!(Policy::from_fields(&HashMap::new()), Policy::default());
    }

    #[test]
    fn round_trips_through_fields() {
        let policy = Policy {
            active: false,
            users_per_second: 7,
            max_active_users: 9,
            entry_token_ttl_seconds: 60,
            sales_open_at: 100,
            pre_queue_opens_at: 50,
            randomize_at_open: false,
            pass_required_from: 70,
            method: QueueingMethod::Random,
            paused: true,
            draining: true,
            min_places: 3,
            session_max_seconds: 1_800,
            end_session_on_order: false,
            invites_until: 1_765_600_000,
            blocked_addresses: vec![
                "10.0.0.0/8".parse().expect("an address"),
                "2001:db8::/32".parse().expect("an address"),
            ],
        };
        let map: HashMap<String, String> = policy
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(Policy::from_fields(&map), policy);
        assert_eq!(FIELDS.len(), policy.to_fields().len());
    }

    #[test]
    fn garbage_and_zero_fall_back_to_defaults() {
        let policy = Policy::from_fields(&fields(&[
            ("usersPerSecond", "fast"),
            ("maxActiveUsers", "0"),
            ("active", "maybe"),
        ]));
        assert_eq!(policy.users_per_second, 50);
        assert_eq!(
            policy.max_active_users, 1000,
            "a zero threshold would close the sale"
        );
        assert!(policy.active);
    }

    #[test]
    fn an_unknown_method_is_fifo_and_a_bad_network_is_skipped_alone() {
        let policy = Policy::from_fields(&fields(&[
            ("method", "lottery"),
            (
                "blockedAddresses",
                "192.0.2.0/24, not-a-net,198.51.100.7/32",
            ),
        ]));
        assert_eq!(policy.method, QueueingMethod::Fifo);
        assert_eq!(policy.blocked_addresses.len(), 2);
        assert!(policy.address_blocked("192.0.2.9".parse().expect("an address")));
        assert!(policy.address_blocked("198.51.100.7".parse().expect("an address")));
        assert!(!policy.address_blocked("198.51.100.8".parse().expect("an address")));
        for method in QueueingMethod::ALL {
            assert_eq!(QueueingMethod::parse(method.as_str()), Some(method));
        }
    }

    #[test]
    fn missing_edge_parameters_serve_everyone() {
        assert_eq!(
            serving_params(&HashMap::new()).serving_at(0),
            i64::MAX as u64
        );
        let params = serving_params(&fields(&[
            ("start", "10"),
            ("perInterval", "5"),
            ("intervalSeconds", "2"),
            ("epoch", "100"),
        ]));
        assert_eq!(params.serving_at(104), 20);
    }
}
