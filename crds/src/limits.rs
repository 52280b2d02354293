//! Bounds shared by the schema attributes and [`crate::Validate`], so the API
//! server and the operator refuse exactly the same values.
//!
//! They are deliberately generous where a real venue or crowd could need it and
//! tight where a wrong value would hurt (a zero threshold closes the sale, a
//! huge path list does not fit the 1 KB edge entry).

/// Longest display name or venue name.
pub const MAX_NAME_LEN: u32 = 200;
/// Sections in one seat map.
pub const MAX_SECTIONS: u32 = 500;
/// Rows in one seated section.
pub const MAX_ROWS: u32 = 500;
/// Seats in one row.
pub const MAX_SEATS_PER_ROW: u32 = 500;
/// Capacity of one standing section.
pub const MAX_STANDING_CAPACITY: u32 = 1_000_000;
/// Seats (seated and standing) in one event: the ticket service keeps a row per
/// seat, so this bounds its table and the import time.
pub const MAX_EVENT_CAPACITY: u64 = 2_000_000;
/// Highest price of one seat, in minor units of the currency.
pub const MAX_PRICE_MINOR: i64 = 100_000_000_000;
/// Seats one order may hold.
pub const MAX_SEATS_PER_ORDER: u32 = 50;
/// Shortest and longest seat hold.
pub const MIN_HOLD_SECONDS: u32 = 30;
pub const MAX_HOLD_SECONDS: u32 = 3_600;
/// Replica bounds of one runtime service. At least one replica always runs
/// during a sale: the operator never scales a service to zero.
pub const MIN_REPLICAS: i32 = 1;
pub const MAX_REPLICAS: i32 = 1_000;
/// Longest pre-warm lead time (one day).
pub const MAX_PREWARM_LEAD_SECONDS: u32 = 86_400;
/// Admission rate bounds (users per second).
pub const MAX_USERS_PER_SECOND: u32 = 100_000;
/// Concurrent active users bounds. The seed ran with 1000.
pub const MAX_ACTIVE_USERS: u32 = 10_000_000;
/// Entry-token lifetime bounds.
pub const MIN_ENTRY_TOKEN_TTL_SECONDS: u32 = 30;
pub const MAX_ENTRY_TOKEN_TTL_SECONDS: u32 = 3_600;
/// Tier-1 serving counter: numbers released per interval, and the interval.
pub const MAX_SERVING_PER_INTERVAL: u32 = 1_000_000;
pub const MAX_SERVING_INTERVAL_SECONDS: u32 = 3_600;
/// Longest pre-queue window before the sale opens (one day).
pub const MAX_PREQUEUE_MINUTES: u32 = 1_440;
/// Path prefixes per list and their length.
pub const MAX_PATHS: u32 = 16;
pub const MAX_PATH_LEN: u32 = 128;
/// Bytes all protected and bypass prefixes may take together: the room's edge
/// entry must stay under the 1 KB CloudFront KeyValueStore value limit with
/// room to spare for the counter parameters.
pub const MAX_EDGE_PATH_BYTES: usize = 512;
/// Hostnames one room holds (`spec.paths.hosts`).
pub const MAX_HOSTS: u32 = 8;
/// A DNS name's length limit.
pub const MAX_HOST_LEN: u32 = 253;
/// Every protected prefix on every host, together: the room's routes in the
/// edge index, whose shards are limited to 1 KB.
pub const MAX_EDGE_ROUTE_BYTES: usize = 512;
/// Propagation margin bounds: a KVS write takes seconds to ~30 s to reach every
/// edge location, so activation is published this far in the future.
pub const MAX_PROPAGATION_MARGIN_SECONDS: u32 = 600;
/// A tier-1 pass lives at least a minute (the edge and the queue check its
/// expiry) and at most a day (a key can only be removed once every pass
/// signed with it has expired).
pub const MIN_PASS_TTL_SECONDS: u32 = 60;
pub const MAX_PASS_TTL_SECONDS: u32 = 86_400;
/// Auto-activation cool-down bounds.
pub const MAX_COOLDOWN_SECONDS: u32 = 86_400;
/// HMAC-SHA256 signing keys shorter than the hash output are refused
/// (RFC 2104 §3: less than L bytes is strongly discouraged).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;
/// User ids one `spec.control` list may name, and their length.
pub const MAX_CONTROL_USERS: u32 = 1_000;
pub const MAX_USER_ID_LEN: u32 = 256;
/// Networks `spec.control.blockAddresses` may name.
pub const MAX_BLOCKED_ADDRESSES: u32 = 256;
/// Longest session after admission, renewals included (a day).
pub const MAX_SESSION_SECONDS: u32 = 86_400;
