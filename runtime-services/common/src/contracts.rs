//! The typed contracts between the ticket and payment services: the internal
//! HTTP API of the ticket service and the Kafka messages of both.
//!
//! The seed passed Kafka payloads around as untyped maps ("duck typing") and
//! let producers and consumers drift apart. Here each message is one Rust type,
//! shared by producer and consumer, carrying an explicit `schema` string that
//! a consumer checks before it trusts the rest (an unknown schema is parked,
//! never guessed at).
//!
//! ## Ticket service, internal API (header `Authorization: Bearer <service token>`)
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /internal/holds/{hold}` | | [`HoldQuote`] |
//! | `POST /internal/holds/{hold}/confirm` | [`ConfirmRequest`] | [`Confirmation`] (200, also when it was already confirmed by the same payment) |
//! | `POST /internal/holds/{hold}/cancel` | [`CancelRequest`] | [`Cancellation`] (refund: every ticket, or the `ticketIds` named, void; their places back on sale) |
//! | `GET /internal/stats` | | [`TicketStats`] (read by the operator for status and scaling, and by the queue's admitter for inventory awareness) |
//!
//! Refusals are problem JSON: 404 `unknown-hold`, 409 `hold-expired` (the hold
//! lapsed or its fencing token is no longer current), 409 `hold-confirmed-elsewhere`
//! (another payment confirmed it), 422 `amount-mismatch`; on cancel 404
//! `unknown-ticket`, 409 `ticket-void` (refunded before by another refund),
//! 409 `refund-tickets-transferred`.
//!
//! ## Kafka topics
//!
//! * [`PAYMENT_EVENTS`]: produced by payment (outbox), consumed by ticket as the
//!   fallback confirmation path. Key: the hold id, so one hold's messages stay in order.
//! * [`RESERVATION_EVENTS`]: produced by ticket (outbox) when a hold is confirmed
//!   or a reservation canceled. Key: the hold id.
//! * [`TRANSFER_EVENTS`]: produced by ticket (outbox) when a ticket changes owner.
//!   Key: the ticket id.

use serde::{Deserialize, Serialize};

/// Topic of [`PaymentEvent`]s.
pub const PAYMENT_EVENTS: &str = "payment-events";
/// Topic of [`ReservationEvent`]s.
pub const RESERVATION_EVENTS: &str = "reservation-events";
/// Topic of [`TransferEvent`]s.
pub const TRANSFER_EVENTS: &str = "transfer-events";

/// Schema of [`PaymentEvent`] v1.
pub const PAYMENT_EVENT_V1: &str = "urr.payment-event/v1";
/// Schema of [`ReservationEvent`] v1.
pub const RESERVATION_EVENT_V1: &str = "urr.reservation-event/v1";
/// Schema of [`TransferEvent`] v1.
pub const TRANSFER_EVENT_V1: &str = "urr.transfer-event/v1";

/// The ticket service's place counts, from its availability cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketStats {
    pub event: String,
    pub total: i64,
    pub held: i64,
    pub sold: i64,
    /// When the counts were read (Unix ms).
    pub as_of_ms: i64,
}

/// What the ticket service says about a hold, for pricing a payment. The
/// amount always comes from here, never from the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldQuote {
    pub hold_id: String,
    pub event: String,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// Unix milliseconds.
    pub expires_at_ms: i64,
    pub status: HoldStatus,
    /// Number of places held (seats, or a standing quantity).
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum HoldStatus {
    Active,
    Confirmed,
    Released,
    Expired,
    Canceled,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Confirmed => "confirmed",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
            HoldStatus::Canceled => "canceled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "active" => HoldStatus::Active,
            "confirmed" => HoldStatus::Confirmed,
            "released" => HoldStatus::Released,
            "expired" => HoldStatus::Expired,
            "canceled" => HoldStatus::Canceled,
            _ => return None,
        })
    }
}

/// Body of `POST /internal/holds/{hold}/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmRequest {
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// Answer of a confirm: the reservation and its tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    pub reservation_id: String,
    pub hold_id: String,
    pub payment_id: String,
    pub ticket_ids: Vec<String>,
    /// `true` when this call found the hold already confirmed by the same
    /// payment (a retry, or the Kafka path got there first).
    pub already_confirmed: bool,
}

/// Body of `POST /internal/holds/{hold}/cancel` (a refund).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    pub payment_id: String,
    pub reason: String,
    /// A partial refund: the tickets to void (each of this reservation,
    /// still held by the payer). Absent: every ticket the payer holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_ids: Option<Vec<String>>,
    /// The payment service's id of this refund. The tickets it voids are
    /// marked with it, so its retry answers the same and another refund of
    /// them is refused (409 `ticket-void`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
}

/// Answer of a cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    pub hold_id: String,
    pub reservation_id: Option<String>,
    pub voided_ticket_ids: Vec<String>,
    pub already_canceled: bool,
    /// The money of `voided_ticket_ids` (each ticket's share of the
    /// reservation): what the refund gives back.
    #[serde(default)]
    pub voided_amount_minor: i64,
}

/// One message on [`PAYMENT_EVENTS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentEvent {
    /// Always [`PAYMENT_EVENT_V1`].
    pub schema: String,
    /// Unique per message; the consumer's `processed_events` key.
    pub message_id: String,
    pub kind: PaymentEventKind,
    pub payment_id: String,
    pub hold_id: String,
    pub event: String,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// Unix milliseconds.
    pub occurred_at_ms: i64,
    /// W3C `traceparent` of the request that caused it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaymentEventKind {
    /// Money moved: the hold must become a reservation.
    Captured,
    /// Money returned: the reservation must be canceled.
    Refunded,
}

/// One message on [`RESERVATION_EVENTS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationEvent {
    /// Always [`RESERVATION_EVENT_V1`].
    pub schema: String,
    pub message_id: String,
    pub kind: ReservationEventKind,
    pub reservation_id: String,
    pub hold_id: String,
    pub payment_id: String,
    pub event: String,
    pub user_id: String,
    pub ticket_ids: Vec<String>,
    pub occurred_at_ms: i64,
    /// W3C `traceparent` continuing the payment's trace, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReservationEventKind {
    Confirmed,
    /// Every ticket void: the reservation ended.
    Canceled,
    /// Some tickets void (a partial refund); the reservation stands.
    TicketsVoided,
}

/// One message on [`TRANSFER_EVENTS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferEvent {
    /// Always [`TRANSFER_EVENT_V1`].
    pub schema: String,
    pub message_id: String,
    pub ticket_id: String,
    pub event: String,
    pub from_user_id: String,
    pub to_user_id: String,
    pub occurred_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_event_wire_format_is_camel_case_with_schema() {
        let event = PaymentEvent {
            schema: PAYMENT_EVENT_V1.into(),
            message_id: "m1".into(),
            kind: PaymentEventKind::Captured,
            payment_id: "p1".into(),
            hold_id: "h1".into(),
            event: "e".into(),
            user_id: "u".into(),
            amount_minor: 100,
            currency: "KRW".into(),
            occurred_at_ms: 5,
            traceparent: None,
        };
        let json = serde_json::to_value(&event).expect("serializes");
        assert_eq!(json["schema"], "urr.payment-event/v1");
        assert_eq!(json["kind"], "captured");
        assert_eq!(json["holdId"], "h1");
        assert!(json.get("traceparent").is_none());
        let back: PaymentEvent = serde_json::from_value(json).expect("parses");
        assert_eq!(back, event);
    }

    #[test]
    fn hold_status_round_trips() {
        for status in [
            HoldStatus::Active,
            HoldStatus::Confirmed,
            HoldStatus::Released,
            HoldStatus::Expired,
            HoldStatus::Canceled,
        ] {
            assert_eq!(HoldStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(HoldStatus::parse("gone"), None);
    }
}
