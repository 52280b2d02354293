//! The public API's answers and bodies that are not a domain type of their
//! own, typed so the OpenAPI document describes exactly what is sent; and
//! what the document says about the service ([`ABOUT`], [`PROBLEMS`]).

use serde::{Deserialize, Serialize};
use urr_service_common::openapi::{About, ProblemType, Scheme};
use utoipa::ToSchema;

use crate::settings::{Catalog, Limits, Price, SectionKind};
use crate::tickets::{OwnershipChange, TicketView};

/// The event as it is sold: window, limits, sections with prices.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventInfo {
    pub event: String,
    pub display_name: String,
    /// RFC 3339; `null` when the Event sets none.
    pub sales_open_at: Option<String>,
    pub sales_close_at: Option<String>,
    /// How long a hold keeps its places before they go back on sale.
    pub hold_timeout_seconds: u32,
    pub limits: Limits,
    pub sections: Vec<SectionInfo>,
}

/// One section: numbered seats (`seated`, held by seat id) or a counted
/// capacity (`standing`, held by quantity).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectionInfo {
    pub id: String,
    pub name: String,
    /// `seated` or `standing`.
    #[schema(pattern = "^(seated|standing)$")]
    pub kind: String,
    pub capacity: u32,
    pub price: Price,
    /// Seated sections only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u32>,
    /// Seated sections only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats_per_row: Option<u32>,
}

impl EventInfo {
    pub fn of(catalog: &Catalog) -> Self {
        let settings = &catalog.settings;
        Self {
            event: catalog.event().to_owned(),
            display_name: settings.display_name.clone(),
            sales_open_at: settings.sales_open_at.clone(),
            sales_close_at: settings.sales_close_at.clone(),
            hold_timeout_seconds: settings.hold_timeout_seconds,
            limits: settings.limits,
            sections: catalog
                .sections
                .iter()
                .map(|s| {
                    let (rows, seats_per_row) = match s.kind {
                        SectionKind::Seated {
                            rows,
                            seats_per_row,
                        } => (Some(rows), Some(seats_per_row)),
                        SectionKind::Standing { .. } => (None, None),
                    };
                    SectionInfo {
                        id: s.id.clone(),
                        name: s.name.clone(),
                        kind: s.kind.as_str().to_owned(),
                        capacity: s.kind.capacity(),
                        price: s.price.clone(),
                        rows,
                        seats_per_row,
                    }
                })
                .collect(),
        }
    }
}

/// A seated section's seats, at most a second old.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatListing {
    pub section: String,
    pub seats: Vec<SeatState>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatState {
    /// `<section>:<row>:<number>`, what a hold names.
    pub seat_id: String,
    pub row: i32,
    pub number: i32,
    /// `available`, `held` or `sold`.
    pub status: String,
}

/// The buyer's valid tickets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyTickets {
    pub tickets: Vec<TicketView>,
}

/// A ticket's changes of owner, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketHistory {
    pub ticket_id: String,
    pub changes: Vec<OwnershipChange>,
}

/// Body of `POST /v1/tickets/{ticket}/transfer`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"toUserId": "friend-1"}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferBody {
    /// The user who receives the ticket (their per-user limit applies).
    #[schema(min_length = 1, max_length = 200)]
    pub to_user_id: String,
}

/// What the ticket service's document says about itself.
pub const ABOUT: About = About {
    title: "URR ticket API",
    description: "Seats and holds of one event's sale. Anyone reads the event, its availability and a section's seats (each cached at most a second). A buyer admitted by the queue holds places with the user JWT **and** the `urr-entry-token` the queue handed out (`POST /v1/events/{event}/holds`; send an `Idempotency-Key` so a retry replays the first answer instead of holding twice), pays for the hold through the payment API, and finds the tickets under `/v1/me/tickets`. Every 4xx and 5xx is `application/problem+json`.",
    schemes: &[Scheme::UserJwt, Scheme::EntryToken],
    problems: PROBLEMS,
};

/// Every problem type the ticket service's own errors answer with (the
/// frame's are [`urr_service_common::openapi::FRAMEWORK_PROBLEMS`]); a test
/// maps every error through its answer and fails on a type missing here.
pub const PROBLEMS: &[ProblemType] = &[
    ProblemType::new(
        "entry-token",
        403,
        "no entry token, or one that is expired, another user's or event's, or given back by leaving the queue: wait in the queue for a new one",
    ),
    ProblemType::new("unknown-event", 404, "no event of that name is sold here"),
    ProblemType::new("unknown-seat", 422, "seats that are not in the seat map"),
    ProblemType::new(
        "unknown-section",
        422,
        "no such section (or it does not sell by quantity / has no numbered seats)",
    ),
    ProblemType::new(
        "seat-taken",
        409,
        "some seats are held or sold: pick other seats",
    ),
    ProblemType::new("sold-out", 409, "not enough places left in the section"),
    ProblemType::new(
        "limit-exceeded",
        422,
        "more places than `maxSeatsPerOrder`, or than `maxSeatsPerUser` with what the user holds and owns",
    ),
    ProblemType::new("sales-closed", 403, "outside the sale window"),
    ProblemType::new("unknown-hold", 404, "no such hold (or not yours)"),
    ProblemType::new("unknown-ticket", 404, "no such ticket (or not yours)"),
    ProblemType::new(
        "hold-expired",
        409,
        "the hold lapsed or its seats were taken over",
    ),
    ProblemType::new(
        "hold-not-active",
        409,
        "the hold is confirmed, released, expired or canceled",
    ),
    ProblemType::new(
        "hold-confirmed-elsewhere",
        409,
        "the hold was confirmed by another payment",
    ),
    ProblemType::new(
        "amount-mismatch",
        422,
        "the amount does not match the hold's",
    ),
    ProblemType::new(
        "idempotency-key-reused",
        422,
        "this `Idempotency-Key` was used for a different request: use a new key",
    ),
    ProblemType::new(
        "idempotency-in-flight",
        409,
        "the first request with this key is still being processed: retry after `Retry-After`",
    ),
    ProblemType::new(
        "ticket-void",
        409,
        "the ticket was already refunded or voided",
    ),
    ProblemType::new(
        "refund-tickets-transferred",
        409,
        "tickets of the refund were transferred to another user",
    ),
    ProblemType::new(
        "conflict",
        409,
        "the change conflicts with the ticket's state (e.g. a transfer to its owner)",
    ),
];
