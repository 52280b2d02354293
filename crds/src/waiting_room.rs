//! The `WaitingRoom` resource: how the crowd in front of an `Event` is held back.
//!
//! Two tiers, as in the seed: tier 1 at the CloudFront edge (anonymous numbers
//! released at `admission.servingRate`, checked by the edge function against a
//! KeyValueStore entry) and tier 2 in the queue service (authenticated users
//! admitted at `admission.usersPerSecond` while fewer than
//! `admission.maxActiveUsers` are active).
//!
//! Its rules, in Rust, are in [`validate`].

mod control;
mod page;
mod validate;

pub use control::*;
pub use page::Page;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ObjectReference, SecretKeyRef, check_name};
use crate::limits::*;
use crate::validation::{InvalidSpec, Validate, Violations, check_pattern};

/// A URL path prefix: starts with `/`, no whitespace, query or fragment.
pub const PATH_PREFIX_PATTERN: &str = r"^/[^\s?#]*$";
/// A hostname as a `Host` header carries it: lowercase DNS labels, no port,
/// no final dot, no wildcard (the edge compares hosts exactly).
pub const HOST_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A CloudFront KeyValueStore ARN.
pub const KVS_ARN_PATTERN: &str = r"^arn:aws:cloudfront::[0-9]{12}:key-value-store/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
/// A CloudFront KeyValueStore name.
pub const KVS_NAME_PATTERN: &str = r"^[a-zA-Z0-9_-]{1,64}$";
/// A signing key id, carried in tokens and the edge entry for key rotation.
pub const KEY_ID_PATTERN: &str = r"^[A-Za-z0-9._-]{1,64}$";

pub const MSG_SCHEDULED_NEEDS_START: &str = "mode Scheduled needs startAt";
pub const MSG_END_AFTER_START: &str = "endAt must be after startAt";
pub const MSG_AUTO_NEEDS_THRESHOLD: &str =
    "mode Auto needs auto.queueDepthAbove, auto.activeUsersAbove or auto.arrivalsPerSecondAbove";
pub const MSG_SESSION_MAX_BELOW_TTL: &str = "sessionMaxSeconds must be at least entryTokenTtlSeconds (a session cannot end before its first token)";
pub const MSG_PATH_BOTH_LISTS: &str = "a path prefix cannot be both protected and bypassed";
pub const MSG_PATH_BYTES: &str = "protected and bypass prefixes together must fit in 512 bytes (the edge entry is limited to 1 KB)";
pub const MSG_INVITES_OUTLIVE_ROOM: &str =
    "invites.validUntil must not be after activation.endAt (a code cannot outlive the room)";
/// The operator's check against the Event (CEL cannot read another object).
pub const MSG_INVITES_OUTLIVE_SALE: &str = "invites.validUntil must not be after the Event's salesCloseAt (a code cannot outlive the sale)";
pub const MSG_HOST_TWICE: &str = "a host is listed twice";
pub const MSG_ROUTE_BYTES: &str = "every protected prefix on every host must fit in 512 bytes together (the edge index is limited to 1 KB a shard)";
pub const MSG_ONE_STORE: &str = "set exactly one of keyValueStoreArn and keyValueStoreName";
pub const MSG_PREVIOUS_KEY_ID: &str =
    "previousSigningKey.id must differ from signingKeyId (it names the key being rotated out)";

/// Desired behaviour of the waiting room in front of one event.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "urr.dev",
    version = "v1alpha1",
    kind = "WaitingRoom",
    namespaced,
    status = "WaitingRoomStatus",
    shortname = "wr",
    shortname = "wroom",
    category = "urr",
    derive = "PartialEq",
    doc = "A virtual waiting room in front of an Event: activation, admission rate, threshold and edge gate.",
    printcolumn = r#"{"name":"Event","type":"string","jsonPath":".spec.eventRef.name"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.activation.mode"}"#,
    printcolumn = r#"{"name":"Active","type":"boolean","jsonPath":".status.active"}"#,
    printcolumn = r#"{"name":"Admission","type":"string","jsonPath":".status.admission"}"#,
    printcolumn = r#"{"name":"Queue","type":"integer","jsonPath":".status.queueDepth"}"#,
    printcolumn = r#"{"name":"Users","type":"integer","jsonPath":".status.activeUsers"}"#,
    printcolumn = r#"{"name":"Wait(s)","type":"integer","jsonPath":".status.estimatedWaitSeconds"}"#,
    printcolumn = r#"{"name":"Edge","type":"string","jsonPath":".status.conditions[?(@.type==\"EdgeSynced\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.queueing.method != 'Random' || self.preQueue.randomizeAtOpen").message(MSG_RANDOM_KEEPS_ORDER).field_path(".queueing.method"))]
#[x_kube(validation = Rule::new("!self.control.draining || self.queueing.method != 'Passthrough'").message(MSG_DRAIN_PASSTHROUGH).field_path(".control.draining"))]
#[x_kube(validation = Rule::new("!has(self.invites) || !has(self.activation.endAt) || self.invites.validUntil <= self.activation.endAt").message(MSG_INVITES_OUTLIVE_ROOM).field_path(".invites.validUntil"))]
pub struct WaitingRoomSpec {
    /// The Event (same namespace) this room protects.
    pub event_ref: ObjectReference,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub admission: Admission,
    #[serde(default)]
    pub pre_queue: PreQueue,
    #[serde(default)]
    pub paths: Paths,
    /// Who gets in first: `Fifo`, `Random`, `Passthrough` or `Reject`.
    #[serde(default)]
    pub queueing: Queueing,
    /// Pause, drain, kick and block during a sale.
    #[serde(default)]
    pub control: Control,
    /// Stop admitting when the tickets are gone.
    #[serde(default)]
    pub inventory: InventoryAwareness,
    /// Invite and presale codes (`urr-operator invite`): signed, expiring,
    /// single-use codes that skip the line or join at its head. Absent: the
    /// room takes no codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invites: Option<Invites>,
    /// The CloudFront edge gate. Without it the room runs tier 2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<Edge>,
    /// The waiting page's branding; unset: the default page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

/// The room's invite codes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invites {
    /// Every code of the room is refused from this time (RFC 3339); a
    /// minted code expires at its own TTL or here, whichever comes first.
    /// Not after `activation.endAt`, nor the Event's `salesCloseAt`.
    pub valid_until: Time,
}

/// When the room holds visitors back.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'Scheduled' || has(self.startAt)").message(MSG_SCHEDULED_NEEDS_START).field_path(".startAt"))]
#[x_kube(validation = Rule::new("!has(self.startAt) || !has(self.endAt) || self.endAt > self.startAt").message(MSG_END_AFTER_START).field_path(".endAt"))]
#[x_kube(validation = Rule::new("self.mode != 'Auto' || (has(self.auto) && (has(self.auto.queueDepthAbove) || has(self.auto.activeUsersAbove) || has(self.auto.arrivalsPerSecondAbove)))").message(MSG_AUTO_NEEDS_THRESHOLD).field_path(".auto"))]
pub struct Activation {
    #[serde(default)]
    pub mode: ActivationMode,
    /// Start of a `Scheduled` room (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Time>,
    /// Optional end of a `Scheduled` room (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<AutoActivation>,
}

/// How the room is switched on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ActivationMode {
    /// On from the moment it is applied (plus the propagation margin).
    #[default]
    Always,
    /// On from `startAt` (to `endAt`, if set).
    Scheduled,
    /// On when load crosses a threshold; off after a drained cool-down.
    Auto,
    /// Off: every visitor passes.
    Off,
}

/// Thresholds of `Auto` mode, read from the queue service's stats.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoActivation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_ACTIVE_USERS))]
    pub queue_depth_above: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_ACTIVE_USERS))]
    pub active_users_above: Option<u32>,
    /// Turn on when more visitors than this arrive per second (new joins or
    /// tier-1 numbers, measured by the queue over its last 10 s): the
    /// threshold that fires while the room is off, when nobody waits and
    /// the queue depth stays 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_USERS_PER_SECOND))]
    pub arrivals_per_second_above: Option<u32>,
    /// How long the queue must stay empty before the room turns off again.
    #[serde(default = "default_cooldown_seconds")]
    #[schemars(range(min = 0, max = MAX_COOLDOWN_SECONDS))]
    pub cooldown_seconds: u32,
}

fn default_cooldown_seconds() -> u32 {
    300
}

/// How fast visitors get in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.sessionMaxSeconds) || self.sessionMaxSeconds >= self.entryTokenTtlSeconds").message(MSG_SESSION_MAX_BELOW_TTL).field_path(".sessionMaxSeconds"))]
pub struct Admission {
    /// Tier 2: users admitted per second by the 1 s batch admitter.
    #[serde(default = "default_users_per_second")]
    #[schemars(range(min = 1, max = MAX_USERS_PER_SECOND))]
    pub users_per_second: u32,
    /// Tier 2: admission stops while this many users hold entry tokens (the
    /// seed's threshold of 1000).
    #[serde(default = "default_max_active_users")]
    #[schemars(range(min = 1, max = MAX_ACTIVE_USERS))]
    pub max_active_users: u32,
    /// Lifetime of an `urr-entry-token`, in seconds.
    #[serde(default = "default_entry_token_ttl_seconds")]
    #[schemars(range(min = MIN_ENTRY_TOKEN_TTL_SECONDS, max = MAX_ENTRY_TOKEN_TTL_SECONDS))]
    pub entry_token_ttl_seconds: u32,
    /// Tier 1: the edge serving counter.
    #[serde(default)]
    pub serving_rate: ServingRate,
    /// Sessions: an admitted buyer's entry renews by `entryTokenTtlSeconds`
    /// while they are active (any call to the queue), up to this long after
    /// admission. Unset: no renewal, the entry lasts `entryTokenTtlSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_ENTRY_TOKEN_TTL_SECONDS, max = MAX_SESSION_SECONDS))]
    pub session_max_seconds: Option<u32>,
    /// A completed order ends its buyer's session at once (the ticket
    /// service signals it), so the slot goes to the next in line.
    #[serde(default = "default_true")]
    pub end_session_on_order: bool,
}

fn default_users_per_second() -> u32 {
    50
}
fn default_max_active_users() -> u32 {
    1000
}
fn default_entry_token_ttl_seconds() -> u32 {
    600
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            users_per_second: default_users_per_second(),
            max_active_users: default_max_active_users(),
            entry_token_ttl_seconds: default_entry_token_ttl_seconds(),
            serving_rate: ServingRate::default(),
            session_max_seconds: None,
            end_session_on_order: true,
        }
    }
}

/// Tier-1 numbers released per interval. The edge computes the serving
/// counter from these (never stored): `start + perInterval * floor((now - epoch) / intervalSeconds)`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServingRate {
    #[serde(default = "default_serving_per_interval")]
    #[schemars(range(min = 1, max = MAX_SERVING_PER_INTERVAL))]
    pub per_interval: u32,
    #[serde(default = "default_serving_interval_seconds")]
    #[schemars(range(min = 1, max = MAX_SERVING_INTERVAL_SECONDS))]
    pub interval_seconds: u32,
}

// The seed released 500 numbers every 10 s.
fn default_serving_per_interval() -> u32 {
    500
}
fn default_serving_interval_seconds() -> u32 {
    10
}

impl Default for ServingRate {
    fn default() -> Self {
        Self {
            per_interval: default_serving_per_interval(),
            interval_seconds: default_serving_interval_seconds(),
        }
    }
}

/// The pre-queue: joining before the sale opens gives no advantage, because
/// everyone who joined in the window is shuffled at open with a seed that is
/// published afterwards.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreQueue {
    /// Minutes before `salesOpenAt` the queue accepts joins; 0 = no pre-queue.
    #[serde(default)]
    #[schemars(range(min = 0, max = MAX_PREQUEUE_MINUTES))]
    pub opens_minutes_before: u32,
    /// Shuffle the pre-queue at open (true) or keep join order (false).
    #[serde(default = "default_true")]
    pub randomize_at_open: bool,
}

fn default_true() -> bool {
    true
}

impl Default for PreQueue {
    fn default() -> Self {
        Self {
            opens_minutes_before: 0,
            randomize_at_open: true,
        }
    }
}

/// Which request paths the edge gate guards.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.bypass.all(b, !(b in self.protected))").message(MSG_PATH_BOTH_LISTS).field_path(".bypass"))]
#[x_kube(validation = Rule::new("self.protected.map(p, size(p)).sum() + self.bypass.map(p, size(p)).sum() <= 512").message(MSG_PATH_BYTES))]
#[x_kube(validation = Rule::new("!has(self.hosts) || self.hosts.all(h, self.hosts.exists_one(x, x == h))").message(MSG_HOST_TWICE).field_path(".hosts"))]
#[x_kube(validation = Rule::new("!has(self.hosts) || size(self.hosts) == 0 || size(self.hosts) * self.protected.map(p, size(p)).sum() + size(self.protected) * self.hosts.map(h, size(h)).sum() <= 512").message(MSG_ROUTE_BYTES))]
pub struct Paths {
    /// Prefixes behind the gate.
    #[serde(default = "default_protected")]
    #[schemars(length(min = 1, max = MAX_PATHS), inner(length(min = 1, max = MAX_PATH_LEN), regex(pattern = PATH_PREFIX_PATTERN)))]
    pub protected: Vec<String>,
    /// Prefixes that always pass (health checks, static assets, the waiting page).
    #[serde(default)]
    #[schemars(length(max = MAX_PATHS), inner(length(min = 1, max = MAX_PATH_LEN), regex(pattern = PATH_PREFIX_PATTERN)))]
    pub bypass: Vec<String>,
    /// Match prefixes ignoring ASCII case, for origins that treat /Events
    /// and /events alike; off: exact case.
    #[serde(default)]
    pub case_insensitive: bool,
    /// The hostnames the room holds, when one distribution serves several
    /// (`shop.example.com`, `m.example.com`): the protected prefixes are
    /// held on these hosts only, and another room may hold the same paths
    /// on other hosts. Empty: every host the distribution serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_HOSTS), inner(length(min = 1, max = MAX_HOST_LEN), regex(pattern = HOST_PATTERN)))]
    pub hosts: Vec<String>,
}

fn default_protected() -> Vec<String> {
    vec!["/".to_owned()]
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            protected: default_protected(),
            bypass: Vec::new(),
            case_insensitive: false,
            hosts: Vec::new(),
        }
    }
}

/// The CloudFront side of the room.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.keyValueStoreArn) != has(self.keyValueStoreName)").message(MSG_ONE_STORE))]
#[x_kube(validation = Rule::new("!has(self.previousSigningKey) || self.previousSigningKey.id != self.signingKeyId").message(MSG_PREVIOUS_KEY_ID).field_path(".previousSigningKey.id"))]
pub struct Edge {
    /// The KeyValueStore associated with the gate function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = KVS_ARN_PATTERN))]
    pub key_value_store_arn: Option<String>,
    /// Or its name, resolved to an ARN by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = KVS_NAME_PATTERN))]
    pub key_value_store_name: Option<String>,
    /// HMAC-SHA256 key of the `urr-vwr-token` (at least 32 bytes). The
    /// operator publishes it for this room only (`key/<namespace>/<name>/<id>`);
    /// the queue signs passes with it.
    pub signing_key_ref: SecretKeyRef,
    #[schemars(regex(pattern = KEY_ID_PATTERN))]
    pub signing_key_id: String,
    /// During a key rotation, the key being rotated out: passes signed with
    /// it stay valid at the edge and the queue. A key that leaves the spec
    /// stays accepted at the edge until every pass signed with it has expired
    /// (`passTtlSeconds`; `status.retiredSigningKeys`), then is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signing_key: Option<SigningKey>,
    /// Lifetime of a tier-1 pass (`urr-vwr-token`), in seconds.
    #[serde(default = "default_pass_ttl_seconds")]
    #[schemars(range(min = MIN_PASS_TTL_SECONDS, max = MAX_PASS_TTL_SECONDS))]
    pub pass_ttl_seconds: u32,
    /// How far in the future activation is published so every edge location
    /// has the new entry before it takes effect (KVS propagation takes seconds
    /// to ~30 s).
    #[serde(default = "default_propagation_margin_seconds")]
    #[schemars(range(min = 0, max = MAX_PROPAGATION_MARGIN_SECONDS))]
    pub propagation_margin_seconds: u32,
    /// Where browsers that must wait are redirected.
    #[serde(default = "default_waiting_page_path")]
    #[schemars(length(min = 1, max = MAX_PATH_LEN), regex(pattern = PATH_PREFIX_PATTERN))]
    pub waiting_page_path: String,
}

/// A signing key and its id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub key_ref: SecretKeyRef,
    #[schemars(regex(pattern = KEY_ID_PATTERN))]
    pub id: String,
}

fn default_pass_ttl_seconds() -> u32 {
    4 * 3600
}

fn default_propagation_margin_seconds() -> u32 {
    30
}
fn default_waiting_page_path() -> String {
    "/waiting/".to_owned()
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitingRoomStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the gate holds visitors back (from `enforceFrom` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// When every edge starts (or started) enforcing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_from: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_users: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_total: Option<i64>,
    /// Wait of a user joining now, from the measured admission rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_sync: Option<EdgeSync>,
    /// Whether the room lets anyone in: `Open`, `Paused`, `Draining`,
    /// `SoldOut` or `Closed` (the queue's view; the spec's when the queue
    /// cannot be read). The `Admitting` condition says the same with a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<String>,
    /// Places neither sold nor held, as the queue last read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub places_left: Option<i64>,
    /// The tier-1 counter's pause and resume (see [`Tier1Counter`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier1: Option<Tier1Counter>,
    /// The `spec.control.kickUsers` already kicked (each once per appearance).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kicked_users: Vec<String>,
    /// Signing keys no longer in the spec that the edge still accepts until
    /// the last pass signed with them expires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_signing_keys: Vec<RetiredSigningKey>,
    /// `Ready`, `EdgeSynced`, `EventFound` (see [`crate::conditions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The last write of the room's entry to the KeyValueStore.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeSync {
    /// ETag of the store after the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `metadata.generation` of the spec that was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// The signing key ids the written entry accepts (current first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_key_ids: Vec<String>,
}

/// A key rotated out, accepted until `passesExpireAt`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetiredSigningKey {
    pub id: String,
    /// When the last pass signed with it expires; its key is removed from
    /// the edge then.
    pub passes_expire_at: Time,
}
