//! Cancellation: a refund voids tickets and puts their places back on sale,
//! either every ticket of a reservation (a whole refund, also the Kafka
//! fallback of `payment-events`) or the ones a partial refund names.
//!
//! A refund gives the payer's money back, so it may void only tickets the
//! payer still holds: a ticket transferred to someone else stays valid and
//! its share of the money stays paid. A partial refund carries the payment
//! service's refund id; the tickets it voids are marked with it, so its
//! retry (after a lost answer) finds them void *by itself* and answers the
//! same amount, while another refund naming them is refused: one ticket's
//! money is never given back twice.
//!
//! The decision is [`VoidPlan::new`], pure; [`HoldDesk::cancel`] reads the
//! rows under lock, asks it, and applies it.

use std::collections::BTreeSet;

use sqlx::{PgConnection, Row};
use urr_service_common::contracts::{
    CancelRequest, Cancellation, RESERVATION_EVENT_V1, RESERVATION_EVENTS, ReservationEvent,
    ReservationEventKind,
};
use urr_service_common::unix_now_ms;

use crate::confirm::{InboxEntry, LockedHold, lock_hold};
use crate::error::TicketError;
use crate::holds::HoldDesk;
use crate::locks::lock_value;

/// The most tickets one partial refund may name (a hold holds far fewer).
pub const MAX_TICKETS_PER_REFUND: usize = 100;

/// One ticket of the reservation, as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub id: String,
    pub owner: String,
    pub valid: bool,
    pub seat: Option<String>,
    /// Its share of the reservation's amount.
    pub price_minor: i64,
    /// The refund that voided it, when one did.
    pub voided_by: Option<String>,
}

/// What a cancel does to a reservation's tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidPlan {
    /// Valid tickets this call voids.
    pub void_now: Vec<String>,
    /// Every ticket the answer reports voided: `void_now` and, on a retry,
    /// those the same refund voided before. Sorted.
    pub answered: Vec<String>,
    /// The money of `answered`: what the refund gives back.
    pub amount_minor: i64,
    /// Whether no valid ticket is left afterwards (the reservation ends).
    pub ends_reservation: bool,
}

impl VoidPlan {
    /// `named`: the tickets a partial refund names, or `None` for every
    /// ticket the payer holds. `refund`: the refund's id, when it has one.
    pub fn new(
        tickets: &[TicketRow],
        payer: &str,
        named: Option<&[String]>,
        refund: Option<&str>,
    ) -> Result<Self, TicketError> {
        let by_this_refund = |ticket: &TicketRow| {
            !ticket.valid && refund.is_some() && ticket.voided_by.as_deref() == refund
        };
        let chosen: Vec<&TicketRow> = match named {
            None => {
                let transferred = tickets
                    .iter()
                    .filter(|t| t.valid && t.owner != payer)
                    .count();
                if transferred > 0 {
                    return Err(TicketError::TicketsTransferred { count: transferred });
                }
                tickets
                    .iter()
                    .filter(|t| t.valid || by_this_refund(t))
                    .collect()
            }
            Some(named) => {
                let named: BTreeSet<&str> = named.iter().map(String::as_str).collect();
                if named.is_empty() {
                    return Err(TicketError::BadRequest(
                        "ticketIds names no ticket; leave it out to refund them all".into(),
                    ));
                }
                if named.len() > MAX_TICKETS_PER_REFUND {
                    return Err(TicketError::BadRequest(format!(
                        "a refund names at most {MAX_TICKETS_PER_REFUND} tickets"
                    )));
                }
                let mut chosen = Vec::with_capacity(named.len());
                let mut transferred = 0;
                for id in named {
                    let ticket = tickets
                        .iter()
                        .find(|t| t.id == id)
                        .ok_or(TicketError::UnknownTicket)?;
                    if ticket.valid && ticket.owner != payer {
                        transferred += 1;
                    } else if !ticket.valid && !by_this_refund(ticket) {
                        return Err(TicketError::TicketVoid(ticket.id.clone()));
                    }
                    chosen.push(ticket);
                }
                if transferred > 0 {
                    return Err(TicketError::TicketsTransferred { count: transferred });
                }
                chosen
            }
        };
        let void_now: Vec<String> = chosen
            .iter()
            .filter(|t| t.valid)
            .map(|t| t.id.clone())
            .collect();
        let mut answered: Vec<String> = chosen.iter().map(|t| t.id.clone()).collect();
        answered.sort();
        let still_valid = tickets.iter().filter(|t| t.valid).count() - void_now.len();
        Ok(VoidPlan {
            void_now,
            answered,
            amount_minor: chosen.iter().map(|t| t.price_minor).sum(),
            ends_reservation: still_valid == 0,
        })
    }
}

/// Each ticket's share of `amount`: the catalog prices when they add up to
/// it, otherwise (the prices changed between the hold and its confirmation)
/// the amount split evenly, the remainder on the first tickets. The shares
/// always add up to `amount`, so refunding every ticket in parts gives back
/// exactly what was paid.
pub fn shares(amount: i64, catalog_prices: &[i64]) -> Vec<i64> {
    if catalog_prices.iter().sum::<i64>() == amount {
        catalog_prices.to_vec()
    } else {
        even_shares(amount, catalog_prices.len())
    }
}

/// `amount` in `count` shares that differ by at most one minor unit.
pub fn even_shares(amount: i64, count: usize) -> Vec<i64> {
    let divisor = count.max(1) as i64;
    let (base, remainder) = (amount / divisor, amount % divisor);
    (0..count as i64)
        .map(|i| base + i64::from(i < remainder))
        .collect()
}

/// Tickets confirmed before prices were recorded per ticket read as an even
/// split of their reservation's amount.
fn with_prices(rows: Vec<(TicketRow, Option<i64>)>, reservation_amount: i64) -> Vec<TicketRow> {
    let even = even_shares(reservation_amount, rows.len());
    rows.into_iter()
        .zip(even)
        .map(|((mut ticket, price), even)| {
            ticket.price_minor = price.unwrap_or(even);
            ticket
        })
        .collect()
}

impl HoldDesk {
    /// Cancels a confirmed hold's reservation or some of its tickets (a
    /// refund), or ends a hold the refunded payment never confirmed.
    pub async fn cancel(
        &self,
        hold_id: &str,
        request: &CancelRequest,
        inbox: Option<InboxEntry<'_>>,
        traceparent: Option<&str>,
    ) -> Result<Cancellation, TicketError> {
        let event = self.catalog.event();
        let mut tx = self.pool.begin().await?;
        if let Some(entry) = inbox
            && !urr_outbox::inbox::claim(&mut tx, entry.consumer, entry.message_id).await?
        {
            return Ok(Cancellation {
                hold_id: hold_id.to_owned(),
                reservation_id: None,
                voided_ticket_ids: Vec::new(),
                already_canceled: true,
                voided_amount_minor: 0,
            });
        }
        let hold = lock_hold(&mut tx, event, hold_id).await?;
        let reservation: Option<(uuid::Uuid, String, String, i64)> = sqlx::query_as(
            "SELECT id, payment_id, status, amount_minor FROM reservations WHERE hold_id = $1 FOR UPDATE",
        )
        .bind(hold.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((reservation, payment, status, reservation_amount)) = reservation else {
            if request.ticket_ids.is_some() {
                return Err(TicketError::Conflict(
                    "nothing was confirmed for this hold, so it has no tickets to refund".into(),
                ));
            }
            // Nothing was confirmed for this hold: end it if it is still live.
            if hold.status == "active" {
                sqlx::query(
                    "UPDATE holds SET status = 'canceled', closed_at = now() WHERE id = $1",
                )
                .bind(hold.id)
                .execute(&mut *tx)
                .await?;
                self.return_held(&mut tx, &hold).await?;
            }
            tx.commit().await?;
            if hold.status == "active" {
                self.release_held_redis(&hold).await;
            }
            return Ok(Cancellation {
                hold_id: hold.id.to_string(),
                reservation_id: None,
                voided_ticket_ids: Vec::new(),
                already_canceled: hold.status != "active",
                voided_amount_minor: 0,
            });
        };
        if payment != request.payment_id {
            return Err(TicketError::Conflict(
                "the hold was confirmed by a different payment".into(),
            ));
        }
        // Locked, so a transfer racing this refund either lands first (and
        // is seen here) or finds the ticket void afterwards.
        let rows = sqlx::query(
            "SELECT id, owner_user_id, status, seat_id, price_minor, voided_by FROM tickets
              WHERE reservation_id = $1 ORDER BY id FOR UPDATE",
        )
        .bind(reservation)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok((
                TicketRow {
                    id: row.try_get::<uuid::Uuid, _>("id")?.to_string(),
                    owner: row.try_get("owner_user_id")?,
                    valid: row.try_get::<String, _>("status")? == "valid",
                    seat: row.try_get("seat_id")?,
                    price_minor: 0,
                    voided_by: row.try_get("voided_by")?,
                },
                row.try_get::<Option<i64>, _>("price_minor")?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let tickets = with_prices(rows, reservation_amount);
        if status == "canceled" && request.refund_id.is_none() {
            tx.commit().await?;
            return Ok(Cancellation {
                hold_id: hold.id.to_string(),
                reservation_id: Some(reservation.to_string()),
                voided_ticket_ids: Vec::new(),
                already_canceled: true,
                voided_amount_minor: 0,
            });
        }
        let plan = VoidPlan::new(
            &tickets,
            &hold.user,
            request.ticket_ids.as_deref(),
            request.refund_id.as_deref(),
        )?;
        let void_now: Vec<uuid::Uuid> = plan
            .void_now
            .iter()
            .filter_map(|id| uuid::Uuid::parse_str(id).ok())
            .collect();
        sqlx::query("UPDATE tickets SET status = 'void', voided_by = $2 WHERE id = ANY($1)")
            .bind(&void_now)
            .bind(request.refund_id.as_deref())
            .execute(&mut *tx)
            .await?;
        let seats: Vec<String> = tickets
            .iter()
            .filter(|t| plan.void_now.contains(&t.id))
            .filter_map(|t| t.seat.clone())
            .collect();
        let standing = plan.void_now.len() - seats.len();
        self.return_sold(&mut tx, &hold, &seats, standing).await?;
        if plan.ends_reservation && status != "canceled" {
            sqlx::query(
                "UPDATE reservations SET status = 'canceled', canceled_at = now() WHERE id = $1",
            )
            .bind(reservation)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE holds SET status = 'canceled', closed_at = now() WHERE id = $1")
                .bind(hold.id)
                .execute(&mut *tx)
                .await?;
        }
        if !plan.void_now.is_empty() {
            let mut voided = plan.void_now.clone();
            voided.sort();
            let message = ReservationEvent {
                schema: RESERVATION_EVENT_V1.to_owned(),
                message_id: uuid::Uuid::new_v4().to_string(),
                kind: if plan.ends_reservation {
                    ReservationEventKind::Canceled
                } else {
                    ReservationEventKind::TicketsVoided
                },
                reservation_id: reservation.to_string(),
                hold_id: hold.id.to_string(),
                payment_id: payment,
                event: event.to_owned(),
                user_id: hold.user.clone(),
                ticket_ids: voided,
                occurred_at_ms: unix_now_ms(),
                // The payment's trace continues into whatever consumes this.
                traceparent: traceparent.map(urr_service_common::trace::child),
            };
            urr_outbox::enqueue(&mut tx, RESERVATION_EVENTS, &message.hold_id, &message).await?;
        }
        tx.commit().await?;
        if !plan.void_now.is_empty() {
            self.metrics.cancellations.inc();
            self.release_sold_redis(&hold, &seats, standing).await;
        }
        Ok(Cancellation {
            hold_id: hold.id.to_string(),
            reservation_id: Some(reservation.to_string()),
            already_canceled: plan.void_now.is_empty(),
            voided_ticket_ids: plan.answered,
            voided_amount_minor: plan.amount_minor,
        })
    }

    /// The places of a hold that never confirmed, back on sale.
    async fn return_held(
        &self,
        conn: &mut PgConnection,
        hold: &LockedHold,
    ) -> Result<(), TicketError> {
        let event = self.catalog.event();
        if !hold.seats.is_empty() {
            sqlx::query(
                "UPDATE seats SET status = 'available', version = version + 1, hold_id = NULL, fencing_token = NULL
                 WHERE event_id = $1 AND hold_id = $2 AND status = 'held'",
            )
            .bind(event)
            .bind(hold.id)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(section) = &hold.section {
            sqlx::query(
                "UPDATE standing_inventory SET held = held - $1, version = version + 1
                 WHERE event_id = $2 AND section_id = $3",
            )
            .bind(hold.quantity)
            .bind(event)
            .bind(section)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// The places of voided tickets back on sale: exactly those, so a
    /// reservation refunded in parts returns each place once.
    async fn return_sold(
        &self,
        conn: &mut PgConnection,
        hold: &LockedHold,
        seats: &[String],
        standing: usize,
    ) -> Result<(), TicketError> {
        let event = self.catalog.event();
        if !seats.is_empty() {
            sqlx::query(
                "UPDATE seats SET status = 'available', version = version + 1, hold_id = NULL, fencing_token = NULL
                 WHERE event_id = $1 AND hold_id = $2 AND status = 'sold' AND seat_id = ANY($3)",
            )
            .bind(event)
            .bind(hold.id)
            .bind(seats)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(section) = &hold.section
            && standing > 0
        {
            sqlx::query(
                "UPDATE standing_inventory SET sold = sold - $1, version = version + 1
                 WHERE event_id = $2 AND section_id = $3",
            )
            .bind(standing as i32)
            .bind(event)
            .bind(section)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn release_held_redis(&self, hold: &LockedHold) {
        let result = if !hold.seats.is_empty() {
            self.locks
                .release_seats(&hold.seats, &lock_value(&hold.id, hold.token))
                .await
                .map(|_| ())
        } else if let Some(section) = &hold.section {
            self.locks
                .return_standing(section, hold.quantity as u32)
                .await
        } else {
            Ok(())
        };
        if let Err(error) = result {
            tracing::warn!(%error, hold = %hold.id, "could not free Redis locks after a cancellation");
        }
    }

    async fn release_sold_redis(&self, hold: &LockedHold, seats: &[String], standing: usize) {
        let mut result = self.locks.forget_seats(seats).await;
        if let Some(section) = &hold.section
            && standing > 0
            && result.is_ok()
        {
            result = self.locks.return_standing(section, standing as u32).await;
        }
        if let Err(error) = result {
            tracing::warn!(%error, hold = %hold.id, "could not free Redis locks after a cancellation");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(id: &str, owner: &str, valid: bool, voided_by: Option<&str>) -> TicketRow {
        TicketRow {
            id: id.into(),
            owner: owner.into(),
            valid,
            seat: Some(format!("A:1:{id}")),
            price_minor: 10,
            voided_by: voided_by.map(Into::into),
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn shares_follow_the_catalog_or_split_evenly_and_always_add_up() {
        assert_eq!(shares(30, &[10, 20]), vec![10, 20]);
        assert_eq!(shares(100, &[10, 20, 30]), vec![34, 33, 33]);
        assert_eq!(shares(7, &[0, 0]), vec![4, 3]);
        assert_eq!(shares(0, &[]), Vec::<i64>::new());
        for (amount, prices) in [(101, vec![1, 1, 1]), (5, vec![9; 7])] {
            assert_eq!(shares(amount, &prices).iter().sum::<i64>(), amount);
        }
    }

    #[test]
    fn a_whole_refund_voids_every_valid_ticket_and_refuses_transferred_ones() {
        let tickets = [
            ticket("a", "alice", true, None),
            ticket("b", "alice", false, Some("r1")),
        ];
        let plan = VoidPlan::new(&tickets, "alice", None, None).expect("accepted");
        assert_eq!(plan.void_now, ids(&["a"]));
        assert_eq!(plan.amount_minor, 10);
        assert!(plan.ends_reservation);
        let moved = [
            ticket("a", "alice", true, None),
            ticket("b", "bob", true, None),
        ];
        assert!(matches!(
            VoidPlan::new(&moved, "alice", None, None),
            Err(TicketError::TicketsTransferred { count: 1 })
        ));
    }

    #[test]
    fn a_partial_refund_voids_the_named_tickets_once() {
        let tickets = [
            ticket("a", "alice", true, None),
            ticket("b", "alice", true, None),
            ticket("c", "bob", true, None),
        ];
        let plan = VoidPlan::new(&tickets, "alice", Some(&ids(&["b", "b"])), Some("r1"))
            .expect("accepted");
        assert_eq!(plan.void_now, ids(&["b"]));
        assert_eq!(plan.amount_minor, 10);
        assert!(!plan.ends_reservation);
        // The payer's own tickets are refundable beside a transferred one.
        assert!(VoidPlan::new(&tickets, "alice", Some(&ids(&["a", "b"])), Some("r1")).is_ok());
        assert!(matches!(
            VoidPlan::new(&tickets, "alice", Some(&ids(&["c"])), Some("r1")),
            Err(TicketError::TicketsTransferred { count: 1 })
        ));
        assert!(matches!(
            VoidPlan::new(&tickets, "alice", Some(&ids(&["z"])), Some("r1")),
            Err(TicketError::UnknownTicket)
        ));
        assert!(matches!(
            VoidPlan::new(&tickets, "alice", Some(&[]), Some("r1")),
            Err(TicketError::BadRequest(_))
        ));
    }

    #[test]
    fn a_retry_answers_the_same_and_another_refund_of_the_same_ticket_is_refused() {
        let after = [
            ticket("a", "alice", true, None),
            ticket("b", "alice", false, Some("r1")),
        ];
        let retry =
            VoidPlan::new(&after, "alice", Some(&ids(&["b"])), Some("r1")).expect("accepted");
        assert!(retry.void_now.is_empty());
        assert_eq!(retry.answered, ids(&["b"]));
        assert_eq!(retry.amount_minor, 10);
        assert!(matches!(
            VoidPlan::new(&after, "alice", Some(&ids(&["b"])), Some("r2")),
            Err(TicketError::TicketVoid(_))
        ));
        // "The rest" under a new refund id: only what is still valid.
        let rest = VoidPlan::new(&after, "alice", None, Some("r2")).expect("accepted");
        assert_eq!((rest.answered, rest.amount_minor), (ids(&["a"]), 10));
    }
}
