//! The `Event` resource: what is sold, when, and what runs it.
//!
//! ```yaml
//! apiVersion: urr.dev/v1alpha1
//! kind: Event
//! metadata: { name: aurora-seoul-2026 }
//! spec:
//!   displayName: Aurora World Tour, Seoul
//!   venue: { name: KSPO Dome, timeZone: Asia/Seoul }
//!   salesOpenAt: "2026-12-01T11:00:00Z"
//!   salesCloseAt: "2026-12-01T23:00:00Z"
//!   seatMap:
//!     sections:
//!       - { id: floor, name: Floor, capacity: 2000, price: { amountMinor: 198000, currency: KRW } }
//!       - { id: a, name: Section A, rows: 20, seatsPerRow: 30, price: { amountMinor: 154000, currency: KRW } }
//!   # auth, services: see examples/event.yaml
//! ```
//!
//! Its rules, in Rust, are in [`validate`].

mod validate;

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::client_address::ClientAddress;
use crate::common::{DNS_LABEL_PATTERN, SecretKeyRef};
use crate::limits::*;
use crate::payment_provider::{
    API_BASE_PATTERN, MSG_PROVIDER_ONLY_PAYMENT, MSG_STRIPE_KEYS, MSG_TOSS_KEYS, PaymentProvider,
    PaymentProviderName,
};
use crate::refund_policy::{MSG_REFUNDS_AFTER_OPEN, RefundPolicy};
use crate::validation::{InvalidSpec, Validate, Violations, check_pattern};

/// ISO 4217 currency code.
pub const CURRENCY_PATTERN: &str = r"^[A-Z]{3}$";
/// An IANA time zone name such as `Asia/Seoul` or `UTC`.
pub const TIME_ZONE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";
/// A container image reference: `[registry[:port]/]path[:tag][@sha256:digest]`.
pub const IMAGE_PATTERN: &str = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$";

// Messages of the cross-field rules, shared by the CEL rules and `validate()`
// so a person sees the same sentence from `kubectl apply` and from the
// operator's `Ready=False` condition.
pub const MSG_EVENT_NAME: &str = "an Event name must be a DNS-1035 label (a-z first) of at most 55 characters: its Services are named <event>-payment and Service names are DNS-1035 labels of at most 63";
/// The form of an Event name (see [`MSG_EVENT_NAME`]).
pub const EVENT_NAME_PATTERN: &str = r"^[a-z]([-a-z0-9]*[a-z0-9])?$";
/// Longest Event name.
pub const MAX_EVENT_NAME_LEN: usize = 55;
pub const MSG_CLOSE_AFTER_OPEN: &str = "salesCloseAt must be after salesOpenAt";
pub const MSG_SECTION_KIND: &str =
    "a section has either rows and seatsPerRow (seated) or capacity (standing), not both";
pub const MSG_ONE_CURRENCY: &str = "every section must be priced in the same currency";
pub const MSG_USER_LIMIT: &str = "maxSeatsPerUser must be at least maxSeatsPerOrder";
pub const MSG_MIN_MAX_REPLICAS: &str = "replicas.min must not exceed replicas.max";
pub const MSG_PREWARM_RANGE: &str =
    "prewarm.replicas must lie between replicas.min and replicas.max";
pub const MSG_JWT_KEY: &str =
    "HS256 needs secretRef and no jwksUrl; RS256 needs jwksUrl and no secretRef";
pub const MSG_QUEUE_CONNECTIONS: &str = "the queue service needs connections.redisUrlRef";
pub const MSG_TICKET_CONNECTIONS: &str =
    "the ticket service needs connections.redisUrlRef, databaseUrlRef and kafkaBrokersRef";
pub const MSG_PAYMENT_CONNECTIONS: &str =
    "the payment service needs connections.databaseUrlRef and kafkaBrokersRef";

/// Desired state of a ticket drop.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "urr.dev",
    version = "v1alpha1",
    kind = "Event",
    namespaced,
    status = "EventStatus",
    shortname = "uev",
    shortname = "urrevent",
    category = "urr",
    derive = "PartialEq",
    doc = "A ticket drop: seat map, sale window, prices and the services that sell it.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Opens","type":"date","jsonPath":".spec.salesOpenAt"}"#,
    printcolumn = r#"{"name":"Sold","type":"integer","jsonPath":".status.seats.sold"}"#,
    printcolumn = r#"{"name":"Total","type":"integer","jsonPath":".status.seats.total"}"#,
    printcolumn = r#"{"name":"Queue","type":"integer","jsonPath":".status.queueDepth"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // The root schema is written by hand (see `EventObject`): the derived one
    // cannot declare `metadata.name`, which the name rule points at.
    schema = "manual"
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.salesCloseAt > self.salesOpenAt").message(MSG_CLOSE_AFTER_OPEN).field_path(".salesCloseAt"))]
#[x_kube(validation = Rule::new("!has(self.refundPolicy) || !has(self.refundPolicy.buyerRefundsUntil) || self.refundPolicy.buyerRefundsUntil > self.salesOpenAt").message(MSG_REFUNDS_AFTER_OPEN).field_path(".refundPolicy.buyerRefundsUntil"))]
pub struct EventSpec {
    /// Name shown to buyers.
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub display_name: String,
    pub venue: Venue,
    /// When the sale opens (RFC 3339). The waiting room and the pre-warm
    /// schedule are anchored here.
    pub sales_open_at: Time,
    /// When the sale closes (RFC 3339); must be after `salesOpenAt`.
    pub sales_close_at: Time,
    pub seat_map: SeatMap,
    #[serde(default)]
    pub limits: OrderLimits,
    /// How long a seat hold lasts before the seat is released, in seconds.
    #[serde(default = "default_hold_timeout_seconds")]
    #[schemars(range(min = MIN_HOLD_SECONDS, max = MAX_HOLD_SECONDS))]
    pub hold_timeout_seconds: u32,
    pub auth: EventAuth,
    /// Where the services read a buyer's address from (the per-address
    /// limits key on it); the operator's default (`--client-address-source`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<ClientAddress>,
    /// Until when buyers may refund their own orders; no deadline when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_policy: Option<RefundPolicy>,
    pub services: EventServices,
}

fn default_hold_timeout_seconds() -> u32 {
    600
}

/// Where the event takes place.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Venue {
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub city: Option<String>,
    /// IANA time zone of the venue, used to show local times to buyers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIME_ZONE_PATTERN))]
    pub time_zone: Option<String>,
}

/// The sections on sale.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
// Linear in the sections (at most MAX_SECTIONS); it fits the CEL cost budget
// only because `currency` declares maxLength 3: an unbounded string is
// costed at the request size limit, which put this rule 15.7x over budget.
#[x_kube(validation = Rule::new("self.sections.all(s, s.price.currency == self.sections[0].price.currency)").message(MSG_ONE_CURRENCY).field_path(".sections"))]
pub struct SeatMap {
    /// The sections, keyed by `id`: each id appears once.
    // Uniqueness is the list's map type (`x-kubernetes-list-type: map`), so
    // the API server refuses a duplicate itself, at no CEL cost. A CEL rule
    // is O(n²) (every id against every id: 250 000 comparisons at 500
    // sections), all of it counted against the CRD's cost budget. Keying by
    // id also lets server-side apply merge sections by id instead of
    // replacing the whole list. The API server's wording of a duplicate is
    // `duplicate_section_message`'s.
    #[schemars(length(min = 1, max = MAX_SECTIONS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["id".into()]))]
    pub sections: Vec<Section>,
}

/// What server-side apply answers for a repeated section id (structured-merge-diff's
/// wording for a duplicate key of a `map` list), and so what [`Validate`] says too.
pub fn duplicate_section_message(id: &str) -> String {
    // Go's %q quoting, which JSON string quoting matches for the DNS-label ids
    // the schema allows.
    let quoted = serde_json::Value::from(id).to_string();
    format!("duplicate entries for key [id={quoted}]")
}

/// One section: seated (`rows` × `seatsPerRow`, each seat sold once) or
/// standing (`capacity`, counted, not numbered).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.capacity) ? !has(self.rows) && !has(self.seatsPerRow) : has(self.rows) && has(self.seatsPerRow)").message(MSG_SECTION_KIND))]
pub struct Section {
    /// Stable id, used in seat ids, Redis keys and metric labels.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL_PATTERN))]
    pub id: String,
    /// Name shown to buyers.
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_ROWS))]
    pub rows: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_SEATS_PER_ROW))]
    pub seats_per_row: Option<u32>,
    /// Standing places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_STANDING_CAPACITY))]
    pub capacity: Option<u32>,
    pub price: Price,
}

impl Section {
    /// Seats or places this section sells.
    pub fn capacity(&self) -> u64 {
        match (self.capacity, self.rows, self.seats_per_row) {
            (Some(capacity), _, _) => u64::from(capacity),
            (None, Some(rows), Some(per_row)) => u64::from(rows) * u64::from(per_row),
            _ => 0,
        }
    }
}

/// A price in minor units (cents, won) so no float ever touches money.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    #[schemars(range(min = 0, max = MAX_PRICE_MINOR))]
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `KRW`, `USD`.
    // The length repeats what the pattern says because the CEL cost estimate
    // reads maxLength, not patterns (see the currency rule on `SeatMap`).
    #[schemars(length(min = 3, max = 3), regex(pattern = CURRENCY_PATTERN))]
    pub currency: String,
}

/// Per-order and per-user seat limits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.maxSeatsPerUser >= self.maxSeatsPerOrder").message(MSG_USER_LIMIT).field_path(".maxSeatsPerUser"))]
pub struct OrderLimits {
    #[serde(default = "default_seats_limit")]
    #[schemars(range(min = 1, max = MAX_SEATS_PER_ORDER))]
    pub max_seats_per_order: u32,
    /// Across all of one user's orders for this event.
    #[serde(default = "default_seats_limit")]
    #[schemars(range(min = 1, max = MAX_SEATS_PER_ORDER))]
    pub max_seats_per_user: u32,
}

fn default_seats_limit() -> u32 {
    4
}

impl Default for OrderLimits {
    fn default() -> Self {
        Self {
            max_seats_per_order: default_seats_limit(),
            max_seats_per_user: default_seats_limit(),
        }
    }
}

/// Keys for the three kinds of tokens (DESIGN.md, Tokens). Only references:
/// the values live in Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventAuth {
    pub user_jwt: UserJwt,
    /// HMAC key of the `urr-entry-token` the queue issues and the ticket
    /// service checks.
    pub entry_token_key_ref: SecretKeyRef,
    /// Shared token of internal calls (payment → ticket confirm).
    pub service_token_ref: SecretKeyRef,
    /// Key the payment provider signs its webhooks with (the sandbox's
    /// shared secret, at least 16 bytes). Required: the payment service
    /// refuses to start without it, so an Event that lacks it is refused by
    /// the API server instead of crash-looping its payment pods.
    pub payment_webhook_secret_ref: SecretKeyRef,
    /// The secret CloudFront sends as `X-URR-Origin-Verify` (Terraform's
    /// `origin_verify_secret_arn`, at least 32 bytes): set, every service
    /// refuses public requests without it (403 `origin-forbidden`), so no
    /// one reaches the origin around the waiting-room gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_secret_ref: Option<SecretKeyRef>,
}

/// How buyers' identity tokens are verified.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.algorithm == 'HS256' ? has(self.secretRef) && !has(self.jwksUrl) : has(self.jwksUrl) && !has(self.secretRef)").message(MSG_JWT_KEY))]
pub struct UserJwt {
    pub algorithm: JwtAlgorithm,
    /// HS256 shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// RS256 key set of the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 2048), regex(pattern = r"^https://[^\s]+$"))]
    pub jwks_url: Option<String>,
    /// Expected `iss` claim, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub issuer: Option<String>,
    /// Expected `aud` claim, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub audience: Option<String>,
}

/// Signature algorithm of user JWTs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
}

/// The three runtime services of an event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.queue.connections.redisUrlRef)").message(MSG_QUEUE_CONNECTIONS).field_path(".queue.connections"))]
#[x_kube(validation = Rule::new("has(self.ticket.connections.redisUrlRef) && has(self.ticket.connections.databaseUrlRef) && has(self.ticket.connections.kafkaBrokersRef)").message(MSG_TICKET_CONNECTIONS).field_path(".ticket.connections"))]
#[x_kube(validation = Rule::new("has(self.payment.connections.databaseUrlRef) && has(self.payment.connections.kafkaBrokersRef)").message(MSG_PAYMENT_CONNECTIONS).field_path(".payment.connections"))]
#[x_kube(validation = Rule::new("!has(self.queue.provider) && !has(self.ticket.provider)").message(MSG_PROVIDER_ONLY_PAYMENT))]
pub struct EventServices {
    pub queue: ServiceRuntime,
    pub ticket: ServiceRuntime,
    pub payment: ServiceRuntime,
}

/// How one service runs. The operator owns the replica count inside
/// `[replicas.min, replicas.max]`: `min` before pre-warm, `prewarm.replicas`
/// from `salesOpenAt - prewarm.leadSeconds`, then scaled by load.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.replicas.min <= self.replicas.max").message(MSG_MIN_MAX_REPLICAS).field_path(".replicas"))]
#[x_kube(validation = Rule::new("!has(self.prewarm) || (self.prewarm.replicas >= self.replicas.min && self.prewarm.replicas <= self.replicas.max)").message(MSG_PREWARM_RANGE).field_path(".prewarm"))]
pub struct ServiceRuntime {
    /// Container image; the operator's default for the service when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = IMAGE_PATTERN))]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    #[serde(default)]
    pub replicas: Replicas,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prewarm: Option<Prewarm>,
    /// Container resources, as in a Pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra environment variables, as in a Pod spec (`valueFrom` for secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub connections: Connections,
    /// The payment service only: its provider and the provider's keys;
    /// the sandbox when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<PaymentProvider>,
}

/// Image pull policy, as in a Pod spec.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// Replica bounds of one service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replicas {
    /// Never below 1: a service is not scaled to zero during a sale.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = MIN_REPLICAS, max = MAX_REPLICAS))]
    pub min: i32,
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = MIN_REPLICAS, max = MAX_REPLICAS))]
    pub max: i32,
}

fn default_min_replicas() -> i32 {
    2
}

fn default_max_replicas() -> i32 {
    10
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            min: default_min_replicas(),
            max: default_max_replicas(),
        }
    }
}

/// Scale-up ahead of the crowd: pods are warm when the sale opens.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prewarm {
    #[schemars(range(min = MIN_REPLICAS, max = MAX_REPLICAS))]
    pub replicas: i32,
    /// How long before `salesOpenAt` to scale up, in seconds.
    #[serde(default = "default_prewarm_lead_seconds")]
    #[schemars(range(min = 0, max = MAX_PREWARM_LEAD_SECONDS))]
    pub lead_seconds: u32,
}

fn default_prewarm_lead_seconds() -> u32 {
    900
}

/// Where a service finds its data stores, each a key of a Secret holding a
/// connection URL (`redis://…`, `postgres://…`, `host:port,host:port`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connections {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_brokers_ref: Option<SecretKeyRef>,
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<EventPhase>,
    /// `Ready`, `Progressing`, `Degraded` (see [`crate::conditions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServicesStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<SeatCounts>,
    /// Buyers waiting in the tier-2 queue, from the queue service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<i64>,
}

/// Where an event is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EventPhase {
    /// Before the pre-warm lead time.
    Scheduled,
    /// Scaling up ahead of `salesOpenAt`.
    Prewarming,
    /// Between `salesOpenAt` and `salesCloseAt` with seats left.
    OnSale,
    /// Every seat sold before close.
    SoldOut,
    /// After `salesCloseAt`.
    Closed,
}

/// Replicas per service, from the Deployments.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesStatus {
    pub queue: ServiceReplicas,
    pub ticket: ServiceReplicas,
    pub payment: ServiceReplicas,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReplicas {
    pub desired: i32,
    pub ready: i32,
}

/// Seat counters, from the ticket service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatCounts {
    pub total: i64,
    pub held: i64,
    pub sold: i64,
}

// The root schema of an `Event` (`#[kube(schema = "manual")]`): what the
// derive would generate (`spec`, `status`, the name rule) plus `metadata.name`.
//
// The name rule has to sit at the root, where CEL sees `self.metadata.name`,
// and should point at `metadata.name` so `kubectl apply` names the field
// (without a fieldPath the API server reports a root rule as `<nil>`). The
// API server only accepts that fieldPath when the schema declares the
// property, and the derive leaves `metadata` out of the schema. Declaring it
// by hand here, instead of patching the CRD after the fact, keeps
// `Event::crd()` itself installable.
//
// The property stays a bare string: the rule, not `pattern` and `maxLength`,
// carries the restriction, so a bad name gets one error that says why.
/// A ticket drop: seat map, sale window, prices and the services that sell it.
#[derive(Serialize, KubeSchema)]
// Only its schema is used; no value of it is ever built.
#[allow(dead_code)]
#[x_kube(validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 55").message(MSG_EVENT_NAME).field_path(".metadata.name"))]
struct EventObject {
    // No doc comments on this field or on `EventMetadata`: the API server
    // refuses anything on `metadata` but `name` and `generateName`, a
    // description included.
    #[serde(default, skip_serializing_if = "EventMetadata::is_empty")]
    metadata: EventMetadata,
    spec: EventSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<EventStatus>,
}

#[derive(Serialize, Default, JsonSchema)]
#[allow(dead_code)]
struct EventMetadata {
    /// A DNS-1035 label of at most 55 characters (see the rule's message).
    // `default`, not `Option`: the property must be neither required (a name
    // may come from `generateName`) nor nullable; `skip_serializing_if` keeps
    // schemars from writing a `default`, which metadata may not have.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
}

impl EventMetadata {
    fn is_empty(&self) -> bool {
        self.name.is_empty()
    }
}

impl JsonSchema for Event {
    fn schema_name() -> Cow<'static, str> {
        "Event".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = EventObject::json_schema(generator);
        schema.insert("title".to_owned(), "Event".into());
        schema
    }
}

impl EventSpec {
    /// Seats and standing places on sale.
    pub fn total_capacity(&self) -> u64 {
        self.seat_map.sections.iter().map(Section::capacity).sum()
    }
}
