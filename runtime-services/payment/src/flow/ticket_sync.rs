//! The ticket sync: the `payment-events` message committed with the state
//! (the outbox), the synchronous confirm or cancel at the ticket service,
//! and the reservation id either path reports.

use sqlx::PgConnection;
use urr_service_common::contracts::{
    CancelRequest, ConfirmRequest, PAYMENT_EVENT_V1, PAYMENT_EVENTS, PaymentEvent, PaymentEventKind,
};
use urr_service_common::unix_now_ms;

use super::{Payments, Row_, load};
use crate::state::PaymentStatus;
use crate::ticket_client::{TicketAnswer, TicketRequest};

/// Fills a payment's reservation id, once: the first path to report it wins
/// and a later report (the other path, a redelivery) changes nothing.
pub async fn record_reservation_on(
    conn: &mut PgConnection,
    payment: uuid::Uuid,
    reservation: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET reservation_id = $2 WHERE id = $1 AND reservation_id IS NULL")
        .bind(payment)
        .bind(reservation)
        .execute(conn)
        .await?;
    Ok(())
}

impl Payments {
    pub(super) async fn enqueue(
        &self,
        conn: &mut PgConnection,
        row: &Row_,
        kind: PaymentEventKind,
    ) -> Result<(), sqlx::Error> {
        let message = PaymentEvent {
            schema: PAYMENT_EVENT_V1.to_owned(),
            message_id: uuid::Uuid::new_v4().to_string(),
            kind,
            payment_id: row.id.to_string(),
            hold_id: row.hold.clone(),
            event: self.event.clone(),
            user_id: row.user.clone(),
            amount_minor: row.amount,
            currency: row.currency.clone(),
            occurred_at_ms: unix_now_ms(),
            traceparent: row.traceparent.clone(),
        };
        urr_outbox::enqueue(conn, PAYMENT_EVENTS, &message.hold_id, &message).await?;
        Ok(())
    }

    /// The synchronous path after capture. Failure is not an error here: the
    /// Kafka message is already committed, and the reconciler retries.
    pub async fn confirm_reservation(&self, id: uuid::Uuid) {
        let row = match load(
            &mut *match self.pool.acquire().await {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "cannot load a payment to confirm");
                    return;
                }
            },
            id,
            false,
        )
        .await
        {
            Ok(Some(row)) if row.status == PaymentStatus::Captured => row,
            _ => return,
        };
        let request = TicketRequest::Confirm {
            hold: row.hold.clone(),
            body: ConfirmRequest {
                payment_id: id.to_string(),
                amount_minor: row.amount,
                currency: row.currency.clone(),
            },
            traceparent: row
                .traceparent
                .as_deref()
                .map(urr_service_common::trace::child),
        };
        let answer = self.ticket.call(request).await;
        self.metrics
            .circuit_state
            .set(crate::breaker::gauge_value(self.ticket.circuit_state()));
        match answer {
            Ok(TicketAnswer::Confirmed(confirmation)) => {
                self.metrics.ticket_call(if confirmation.already_confirmed {
                    "already-confirmed"
                } else {
                    "confirmed"
                });
                if let Err(error) = self
                    .record_reservation(id, &confirmation.reservation_id)
                    .await
                {
                    tracing::warn!(%error, "cannot record the reservation id");
                }
            }
            Ok(TicketAnswer::Refused {
                problem, detail, ..
            }) => {
                // The ticket service says the hold can never be confirmed by
                // this payment (expired, confirmed by another, repriced):
                // give the money back.
                self.metrics.ticket_call("refused");
                tracing::warn!(payment = %id, %problem, %detail, "the ticket service refused the confirmation; refunding");
                let reason =
                    format!("the ticket service refused the confirmation ({problem}); refunding");
                if let Err(error) = self.start_refund(&row, &reason).await {
                    tracing::warn!(%error, payment = %id, "automatic refund failed; the reconciler retries");
                }
            }
            Ok(TicketAnswer::Rejected {
                status,
                problem,
                detail,
            }) => {
                // Not a verdict on the hold (a wrong or rotated service
                // token, a misrouted URL): refunding here would refund
                // buyers the Kafka path then issues tickets to. The payment
                // stays captured without a reservation; the reconciler asks
                // again and Kafka confirms meanwhile. A human must look.
                let reason = if matches!(status, 401 | 403) {
                    "auth"
                } else {
                    "rejected"
                };
                self.metrics.ticket_call("rejected");
                self.metrics.confirm_deferred(reason);
                tracing::error!(payment = %id, status, %problem, %detail, reason, "the ticket service rejected the confirm call; not refunding, the reconciler retries");
            }
            Ok(TicketAnswer::Canceled(_)) => {}
            Err(error) => {
                let outcome = match error {
                    crate::ticket_client::TicketCallError::CircuitOpen(_) => "circuit-open",
                    crate::ticket_client::TicketCallError::Unavailable(_) => "unavailable",
                };
                self.metrics.ticket_call(outcome);
                self.metrics.confirm_deferred(outcome);
                // Money taken and no reservation yet: an error, so it pages
                // when it lasts (the retries with backoff are spent).
                tracing::error!(%error, payment = %id, reason = outcome, "synchronous confirm failed after its retries; not refunding, Kafka confirms and the reconciler retries");
            }
        }
    }

    /// Records the reservation a confirmation produced (either path).
    pub async fn record_reservation(
        &self,
        payment: uuid::Uuid,
        reservation: &str,
    ) -> Result<(), sqlx::Error> {
        record_reservation_on(&mut *self.pool.acquire().await?, payment, reservation).await
    }

    pub(super) async fn cancel_reservation(&self, id: uuid::Uuid) {
        let Ok(Some(row)) = (async {
            let mut conn = self.pool.acquire().await?;
            load(&mut conn, id, false).await
        })
        .await
        else {
            return;
        };
        let request = TicketRequest::Cancel {
            hold: row.hold.clone(),
            body: CancelRequest {
                payment_id: id.to_string(),
                reason: "refunded".into(),
                ticket_ids: None,
                refund_id: None,
            },
            traceparent: row
                .traceparent
                .as_deref()
                .map(urr_service_common::trace::child),
        };
        match self.ticket.call(request).await {
            Ok(TicketAnswer::Refused {
                status,
                problem,
                detail,
            })
            | Ok(TicketAnswer::Rejected {
                status,
                problem,
                detail,
            }) => {
                self.metrics.ticket_call("cancel-refused");
                tracing::warn!(payment = %id, status, %problem, %detail, "the ticket service refused the cancel; Kafka cancels");
            }
            Ok(_) => self.metrics.ticket_call("canceled"),
            Err(error) => {
                self.metrics.ticket_call("unavailable");
                tracing::warn!(%error, payment = %id, "synchronous cancel failed; Kafka cancels");
            }
        }
    }
}
