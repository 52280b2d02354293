//! Refunds: the buyer's (`POST /v1/payments/{id}/refund`), the automatic one
//! after the ticket service refused a confirmation, and the provider call of
//! a late capture's refund ([`crate::late`]).
//!
//! A refund of a captured payment moves two things held by two services: the
//! tickets (the ticket service voids them) and the money (the provider gives
//! it back). The tickets go first, because the ticket service may refuse
//! (tickets of the reservation transferred to someone else), and a refused
//! void must leave the money where it is. So that a provider or a ticket
//! service failing half-way never leaves voided tickets with the money kept,
//! the refund is recorded as owed (`refund_requested_at`, with a transition)
//! before either call, cleared only when the ticket service refuses, and the
//! reconciler finishes every owed refund (both calls are idempotent: the
//! ticket service answers "already canceled", the provider's second refund
//! webhook finds the payment refunded).

use sqlx::PgConnection;
use urr_service_common::contracts::{CancelRequest, Cancellation};

use crate::error::PaymentError;
use crate::flow::{PaymentView, Payments, Row_, load, parse_id};
use crate::provider::ProviderError;
use crate::refund_parts::normalise_ticket_ids;
use crate::state::{InvalidTransition, PaymentStatus};
use crate::ticket_client::{TicketAnswer, TicketRequest};

/// Records a note in `payment_transitions` that changes no status (a refund
/// owed, refused, or a late capture): the audit trail shows why money moved
/// or did not.
pub(crate) async fn note(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    status: PaymentStatus,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_transitions (payment_id, from_status, to_status, reason) VALUES ($1, $2, $2, $3)",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

fn not_refundable(status: PaymentStatus) -> PaymentError {
    InvalidTransition {
        from: status.as_str().to_owned(),
        to: PaymentStatus::Refunded.as_str(),
    }
    .into()
}

/// The ticket service's answer to a refund's void.
pub(crate) enum VoidAnswer {
    /// Voided (or voided before by the same refund): what their money is.
    Voided(Cancellation),
    /// Its verdict on these tickets (transferred, refunded by another
    /// refund, not of this reservation, confirmed by another payment):
    /// nothing was voided, so nothing is owed.
    Refused(String),
}

impl Payments {
    /// Asks the ticket service to void a refund's tickets: every ticket the
    /// payer holds (`tickets` `None`), or those named, under the refund
    /// part's id. An answer that is no verdict (a refused service token, a
    /// misrouted URL, no answer) is an error: the refund stays owed and the
    /// reconciler asks again.
    pub(crate) async fn void_for_refund(
        &self,
        row: &Row_,
        tickets: Option<Vec<String>>,
        refund: Option<String>,
    ) -> Result<VoidAnswer, PaymentError> {
        let request = TicketRequest::Cancel {
            hold: row.hold.clone(),
            body: CancelRequest {
                payment_id: row.id.to_string(),
                reason: "refund".into(),
                ticket_ids: tickets,
                refund_id: refund,
            },
            traceparent: row
                .traceparent
                .as_deref()
                .map(urr_service_common::trace::child),
        };
        match self.ticket.call(request).await {
            Ok(TicketAnswer::Canceled(canceled)) => Ok(VoidAnswer::Voided(canceled)),
            Ok(
                TicketAnswer::Refused { detail, .. }
                | TicketAnswer::Rejected {
                    status: 409,
                    detail,
                    ..
                },
            ) => {
                self.metrics.ticket_call("refund-refused");
                Ok(VoidAnswer::Refused(detail))
            }
            Ok(TicketAnswer::Rejected {
                status: 404,
                problem,
                detail,
            }) if problem == "unknown-ticket" => {
                self.metrics.ticket_call("refund-refused");
                Ok(VoidAnswer::Refused(detail))
            }
            Ok(TicketAnswer::Rejected {
                status,
                problem,
                detail,
            }) => {
                self.metrics.ticket_call("rejected");
                tracing::error!(payment = %row.id, status, %problem, %detail, "the ticket service rejected a refund's void; the refund stays owed, the reconciler retries");
                Err(PaymentError::TicketUnavailable(format!(
                    "the ticket service answered {status} {problem}"
                )))
            }
            Ok(TicketAnswer::Confirmed(_)) => Err(PaymentError::TicketUnavailable(
                "the ticket service answered a cancel with a confirmation".into(),
            )),
            Err(error) => Err(PaymentError::TicketUnavailable(error.to_string())),
        }
    }

    /// `POST /v1/payments/{id}/refund`: captured only, within the Event's
    /// refund window; every ticket, or the `tickets` named
    /// ([`crate::refund_parts`]). The provider confirms by webhook.
    pub async fn refund(
        &self,
        user: &str,
        id: &str,
        tickets: Option<Vec<String>>,
    ) -> Result<PaymentView, PaymentError> {
        let tickets = normalise_ticket_ids(tickets)?;
        let id = parse_id(id)?;
        let row = load(&mut *self.pool.acquire().await?, id, false)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        if row.user != user {
            return Err(PaymentError::UnknownPayment);
        }
        self.buyer_refunds.check(chrono::Utc::now())?;
        self.refund_tickets(&row, tickets, &self.buyer_refunds.buyer_reason())
            .await?;
        self.view(user, &id.to_string()).await
    }

    /// `POST /internal/payments/{id}/refund`: the organiser refunds any
    /// captured payment, window or not, and says why (the reason is the
    /// transition's). Answers the payment as its buyer sees it.
    pub async fn refund_by_organiser(
        &self,
        id: &str,
        reason: &str,
        tickets: Option<Vec<String>>,
    ) -> Result<PaymentView, PaymentError> {
        let tickets = normalise_ticket_ids(tickets)?;
        let reason = crate::refund_policy::organiser_reason(reason).ok_or_else(|| {
            PaymentError::BadRequest(format!(
                "reason must be 1 to {} printable characters",
                crate::refund_policy::MAX_REASON_CHARS
            ))
        })?;
        let id = parse_id(id)?;
        let row = load(&mut *self.pool.acquire().await?, id, false)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        self.refund_tickets(&row, tickets, &reason).await?;
        self.view(&row.user, &id.to_string()).await
    }

    /// A whole refund while nothing was refunded in parts; otherwise (some
    /// tickets named, or parts refunded before) a part: what is left of a
    /// payment refunded in parts is the money of the tickets left.
    async fn refund_tickets(
        &self,
        row: &Row_,
        tickets: Vec<String>,
        reason: &str,
    ) -> Result<(), PaymentError> {
        let refunded_in_parts: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM refund_parts WHERE payment_id = $1 AND status IN ('owed', 'refunded'))",
        )
        .bind(row.id)
        .fetch_one(&self.pool)
        .await?;
        if tickets.is_empty() && !refunded_in_parts {
            self.start_refund(row, reason).await
        } else {
            self.refund_in_part(row, tickets, reason).await
        }
    }

    /// Refunds a captured payment: recorded as owed, then the tickets voided
    /// (or the refusal recorded and the owed mark cleared), then the money
    /// asked back. Called again by the reconciler while the mark is set.
    pub(crate) async fn start_refund(&self, row: &Row_, reason: &str) -> Result<(), PaymentError> {
        if row.status != PaymentStatus::Captured {
            return Err(not_refundable(row.status));
        }
        self.owe_refund(row.id, reason).await?;
        match self.void_for_refund(row, None, None).await? {
            VoidAnswer::Voided(_) => {}
            VoidAnswer::Refused(detail) => {
                self.refuse_refund(row.id, &detail).await?;
                return Err(PaymentError::RefundRefused(detail));
            }
        }
        self.request_refund(row).await
    }

    /// Marks a captured payment as owing its refund (once, with a
    /// transition); a payment that is no longer captured cannot be refunded.
    async fn owe_refund(&self, id: uuid::Uuid, reason: &str) -> Result<(), PaymentError> {
        let mut tx = self.pool.begin().await?;
        let row = load(&mut tx, id, true)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        if row.status != PaymentStatus::Captured {
            return Err(not_refundable(row.status));
        }
        // `updated_at` moves too, so the reconciler leaves this attempt
        // alone for a while.
        sqlx::query(
            "UPDATE payments SET refund_requested_at = COALESCE(refund_requested_at, now()),
                    updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if row.refund_requested_at.is_none() {
            note(&mut tx, id, row.status, reason).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The ticket service would not void the tickets: nothing is owed, the
    /// payment stays captured, and the reason is on record.
    async fn refuse_refund(&self, id: uuid::Uuid, detail: &str) -> Result<(), PaymentError> {
        let mut tx = self.pool.begin().await?;
        let cleared = sqlx::query(
            "UPDATE payments SET refund_requested_at = NULL, updated_at = now()
              WHERE id = $1 AND status = 'captured' AND refund_requested_at IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if cleared == 1 {
            note(
                &mut tx,
                id,
                PaymentStatus::Captured,
                &format!("refund refused by the ticket service: {detail}"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Asks the provider to give the money of `row` back (a captured
    /// payment, or a late capture of a failed or canceled one); the refund's
    /// webhook moves it to `refunded`.
    pub(crate) async fn request_refund(&self, row: &Row_) -> Result<(), PaymentError> {
        let provider = self
            .providers
            .get(&row.provider)
            .ok_or_else(|| PaymentError::UnknownProvider(row.provider.clone()))?;
        let accepted = provider
            .refund_answer(&row.provider_payment())
            .await
            .map_err(|e| match e {
                ProviderError::Refused(reason) => PaymentError::ProviderRefused(reason),
                ProviderError::Unavailable(reason) => PaymentError::ProviderUnavailable(reason),
            })?;
        // Toss's cancel answers the refund itself: applied now, as its
        // webhook would be.
        if let Some(verdict) = accepted.verdict {
            self.apply_verdict(row, accepted.reference, verdict).await?;
        }
        Ok(())
    }
}
