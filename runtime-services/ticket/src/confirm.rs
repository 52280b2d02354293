//! Confirmation (payment captured → reservation and tickets; the refund side
//! is [`crate::cancel`]). It runs for
//! the synchronous REST call of the payment service and for the Kafka
//! fallback, and are idempotent between them: whichever path comes first
//! confirms, the other finds the hold confirmed by the same payment.

use std::time::Instant;

use sqlx::{PgConnection, Row};
use urr_service_common::contracts::{
    ConfirmRequest, Confirmation, RESERVATION_EVENT_V1, RESERVATION_EVENTS, ReservationEvent,
    ReservationEventKind,
};
use urr_service_common::unix_now_ms;

use crate::error::TicketError;
use crate::holds::HoldDesk;
use crate::locks::lock_value;

/// Which path asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmPath {
    Rest,
    Kafka,
}

impl ConfirmPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmPath::Rest => "rest",
            ConfirmPath::Kafka => "kafka",
        }
    }
}

/// A consumed message to record in `processed_events`, in the same
/// transaction as the effect.
#[derive(Debug, Clone, Copy)]
pub struct InboxEntry<'a> {
    pub consumer: &'a str,
    pub message_id: &'a str,
}

pub(crate) struct LockedHold {
    pub(crate) id: uuid::Uuid,
    pub(crate) user: String,
    pub(crate) status: String,
    pub(crate) section: Option<String>,
    pub(crate) seats: Vec<String>,
    pub(crate) quantity: i32,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) token: i64,
    pub(crate) lapsed: bool,
    pub(crate) payment: Option<String>,
}

pub(crate) async fn lock_hold(
    conn: &mut PgConnection,
    event: &str,
    hold_id: &str,
) -> Result<LockedHold, TicketError> {
    let id = uuid::Uuid::parse_str(hold_id).map_err(|_| TicketError::UnknownHold)?;
    let row = sqlx::query(
        "SELECT user_id, status, section_id, seat_ids, quantity, amount_minor, currency, fencing_token,
                expires_at <= now() AS lapsed, payment_id
         FROM holds WHERE id = $1 AND event_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(event)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(TicketError::UnknownHold)?;
    Ok(LockedHold {
        id,
        user: row.try_get("user_id")?,
        status: row.try_get("status")?,
        section: row.try_get("section_id")?,
        seats: row.try_get("seat_ids")?,
        quantity: row.try_get("quantity")?,
        amount: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        token: row.try_get("fencing_token")?,
        lapsed: row.try_get("lapsed")?,
        payment: row.try_get("payment_id")?,
    })
}

async fn existing_confirmation(
    conn: &mut PgConnection,
    hold: &LockedHold,
    payment_id: &str,
) -> Result<Confirmation, TicketError> {
    let reservation: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM reservations WHERE hold_id = $1")
            .bind(hold.id)
            .fetch_one(&mut *conn)
            .await?;
    let tickets: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM tickets WHERE reservation_id = $1 ORDER BY id")
            .bind(reservation)
            .fetch_all(&mut *conn)
            .await?;
    Ok(Confirmation {
        reservation_id: reservation.to_string(),
        hold_id: hold.id.to_string(),
        payment_id: payment_id.to_owned(),
        ticket_ids: tickets.iter().map(ToString::to_string).collect(),
        already_confirmed: true,
    })
}

impl HoldDesk {
    /// Confirms a hold for a captured payment.
    pub async fn confirm(
        &self,
        hold_id: &str,
        request: &ConfirmRequest,
        path: ConfirmPath,
        inbox: Option<InboxEntry<'_>>,
        traceparent: Option<&str>,
    ) -> Result<Confirmation, TicketError> {
        let started = Instant::now();
        let result = self
            .confirm_inner(hold_id, request, path, inbox, traceparent)
            .await;
        self.metrics
            .confirm_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.confirmation(
            path.as_str(),
            match &result {
                Ok(c) if c.already_confirmed => "already-confirmed",
                Ok(_) => "confirmed",
                Err(TicketError::HoldExpired) => "expired",
                Err(TicketError::ConfirmedElsewhere) => "confirmed-elsewhere",
                Err(TicketError::AmountMismatch(_)) => "amount-mismatch",
                Err(_) => "error",
            },
        );
        result
    }

    async fn confirm_inner(
        &self,
        hold_id: &str,
        request: &ConfirmRequest,
        path: ConfirmPath,
        inbox: Option<InboxEntry<'_>>,
        traceparent: Option<&str>,
    ) -> Result<Confirmation, TicketError> {
        if request.payment_id.is_empty() || request.payment_id.len() > 200 {
            return Err(TicketError::BadRequest(
                "paymentId must be 1 to 200 characters".into(),
            ));
        }
        let event = self.catalog.event();
        let mut tx = self.pool.begin().await?;
        if let Some(entry) = inbox
            && !urr_outbox::inbox::claim(&mut tx, entry.consumer, entry.message_id).await?
        {
            // An earlier delivery of this message was handled: answer as it did.
            let hold = lock_hold(&mut tx, event, hold_id).await?;
            if hold.payment.as_deref() == Some(request.payment_id.as_str()) {
                return existing_confirmation(&mut tx, &hold, &request.payment_id).await;
            }
            return Err(TicketError::HoldExpired);
        }
        let hold = lock_hold(&mut tx, event, hold_id).await?;
        match hold.status.as_str() {
            "confirmed" if hold.payment.as_deref() == Some(request.payment_id.as_str()) => {
                let confirmation =
                    existing_confirmation(&mut tx, &hold, &request.payment_id).await?;
                tx.commit().await?; // keeps the inbox entry
                return Ok(confirmation);
            }
            "confirmed" => return Err(TicketError::ConfirmedElsewhere),
            "active" if !hold.lapsed => {}
            "canceled" => return Err(TicketError::HoldNotActive("canceled")),
            _ => return Err(TicketError::HoldExpired),
        }
        if request.amount_minor != hold.amount || request.currency != hold.currency {
            return Err(TicketError::AmountMismatch(format!(
                "the hold costs {} {}, the payment says {} {}",
                hold.amount, hold.currency, request.amount_minor, request.currency
            )));
        }
        let lock = lock_value(&hold.id, hold.token);
        // Third protection: the fencing token must still be the current one
        // on every seat. On success the locks stop expiring.
        if !self.locks.verify_seats(&hold.seats, &lock).await? {
            return Err(TicketError::HoldExpired);
        }
        if !hold.seats.is_empty() {
            let sold = sqlx::query(
                "UPDATE seats SET status = 'sold', version = version + 1
                 WHERE event_id = $1 AND hold_id = $2 AND fencing_token = $3 AND status = 'held'",
            )
            .bind(event)
            .bind(hold.id)
            .bind(hold.token)
            .execute(&mut *tx)
            .await?;
            if sold.rows_affected() != hold.seats.len() as u64 {
                return Err(TicketError::HoldExpired);
            }
        }
        if let Some(section) = &hold.section {
            sqlx::query(
                "UPDATE standing_inventory SET held = held - $1, sold = sold + $1, version = version + 1
                 WHERE event_id = $2 AND section_id = $3",
            )
            .bind(hold.quantity)
            .bind(event)
            .bind(section)
            .execute(&mut *tx)
            .await?;
        }
        let reservation = uuid::Uuid::new_v4();
        let inserted = sqlx::query(
            "INSERT INTO reservations (id, hold_id, payment_id, event_id, user_id, amount_minor, currency, status, confirmed_via)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'confirmed', $8)
             ON CONFLICT (payment_id) DO NOTHING",
        )
        .bind(reservation)
        .bind(hold.id)
        .bind(&request.payment_id)
        .bind(event)
        .bind(&hold.user)
        .bind(hold.amount)
        .bind(&hold.currency)
        .bind(path.as_str())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Err(TicketError::Conflict(
                "this payment already confirmed another hold".into(),
            ));
        }
        let places: Vec<(Option<String>, String)> = if hold.seats.is_empty() {
            let section = hold.section.clone().unwrap_or_default();
            (0..hold.quantity)
                .map(|_| (None, section.clone()))
                .collect()
        } else {
            hold.seats
                .iter()
                .map(|seat| {
                    let section = seat.rsplitn(3, ':').nth(2).unwrap_or_default().to_owned();
                    (Some(seat.clone()), section)
                })
                .collect()
        };
        // Each ticket's share of the amount, kept so a partial refund gives
        // back exactly its money.
        let catalog_prices: Vec<i64> = places
            .iter()
            .map(|(_, section)| {
                self.catalog
                    .section(section)
                    .map_or(0, |s| s.price.amount_minor)
            })
            .collect();
        let prices = crate::cancel::shares(hold.amount, &catalog_prices);
        let mut ticket_ids = Vec::with_capacity(places.len());
        for ((seat, section), price) in places.into_iter().zip(prices) {
            let ticket = uuid::Uuid::new_v4();
            sqlx::query(
                "INSERT INTO tickets (id, reservation_id, event_id, section_id, seat_id, owner_user_id, status, price_minor)
                 VALUES ($1, $2, $3, $4, $5, $6, 'valid', $7)",
            )
            .bind(ticket)
            .bind(reservation)
            .bind(event)
            .bind(&section)
            .bind(&seat)
            .bind(&hold.user)
            .bind(price)
            .execute(&mut *tx)
            .await?;
            ticket_ids.push(ticket.to_string());
        }
        ticket_ids.sort();
        sqlx::query(
            "UPDATE holds SET status = 'confirmed', payment_id = $2, closed_at = now() WHERE id = $1",
        )
        .bind(hold.id)
        .bind(&request.payment_id)
        .execute(&mut *tx)
        .await?;
        let message = ReservationEvent {
            schema: RESERVATION_EVENT_V1.to_owned(),
            message_id: uuid::Uuid::new_v4().to_string(),
            kind: ReservationEventKind::Confirmed,
            reservation_id: reservation.to_string(),
            hold_id: hold.id.to_string(),
            payment_id: request.payment_id.clone(),
            event: event.to_owned(),
            user_id: hold.user.clone(),
            ticket_ids: ticket_ids.clone(),
            occurred_at_ms: unix_now_ms(),
            // The payment's trace continues into whatever consumes this.
            traceparent: traceparent.map(urr_service_common::trace::child),
        };
        urr_outbox::enqueue(&mut tx, RESERVATION_EVENTS, &message.hold_id, &message).await?;
        tx.commit().await?;
        if let Err(error) = self.locks.mark_sold(&hold.seats, &lock).await {
            // Harmless: the locks no longer expire, so the seats stay
            // refused at Redis; a restart rewrites them as sold.
            tracing::warn!(%error, hold = %hold.id, "could not mark seats sold in Redis");
        }
        if let Err(error) = self.locks.end_session(&hold.user).await {
            // The session then lasts to its expiry, as before sessions ended early.
            tracing::warn!(%error, hold = %hold.id, "could not signal the end of the buyer's session");
        }
        Ok(Confirmation {
            reservation_id: reservation.to_string(),
            hold_id: hold.id.to_string(),
            payment_id: request.payment_id.clone(),
            ticket_ids,
            already_confirmed: false,
        })
    }
}
