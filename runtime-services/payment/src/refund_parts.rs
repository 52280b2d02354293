//! Refunds in parts: the money of some tickets of a captured payment, or of
//! the tickets left after earlier parts (`ticketIds` absent).
//!
//! A part moves the same two things a whole refund moves ([`crate::refunds`])
//! in the same order: recorded as owed first (a `refund_parts` row, with a
//! transition), then the ticket service voids the named tickets and answers
//! their shares of the payment (what each ticket cost), then the provider
//! gives that amount back. The part's id travels to both: the ticket service
//! marks the tickets it voids with it and the provider takes it as the
//! idempotency key, so the reconciler can repeat an owed part until it is
//! done without voiding or refunding anything twice.
//!
//! One part is in flight per payment at a time (a unique index): parts of a
//! payment are given back one after another, so the refunded total never
//! races. When the parts add up to the whole amount (the shares always do
//! once every ticket is refunded) the payment is `refunded`.

use serde::Serialize;
use sqlx::{PgConnection, Row};

use crate::error::PaymentError;
use crate::flow::{Payments, Row_, load};
use crate::provider::{ProviderError, RefundPart};
use crate::refunds::{VoidAnswer, note};
use crate::state::{InvalidTransition, PaymentStatus};
use crate::webhook::WebhookEvent;

/// The most tickets one refund may name.
pub const MAX_TICKETS: usize = 100;
/// The longest ticket id accepted (the ticket service's are UUIDs).
const MAX_TICKET_ID: usize = 64;

/// One refund part as its buyer sees it (on the payment's view).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundPartView {
    pub refund_id: String,
    /// The tickets named; empty for "the tickets left".
    pub ticket_ids: Vec<String>,
    /// Known once the ticket service voided the tickets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    /// `owed` (under way), `refunded`, or `refused` (nothing moved).
    pub status: String,
}

/// A `refund_parts` row.
#[derive(Debug, Clone)]
pub(crate) struct PartRow {
    id: uuid::Uuid,
    ticket_ids: Vec<String>,
    amount: Option<i64>,
}

/// The buyer's or organiser's `ticketIds`: deduplicated and sorted (the same
/// tickets in another order are the same refund), at most [`MAX_TICKETS`],
/// each a short printable id. `None` stays `None`: every ticket left.
pub fn normalise_ticket_ids(ids: Option<Vec<String>>) -> Result<Vec<String>, PaymentError> {
    let Some(mut ids) = ids else {
        return Ok(Vec::new());
    };
    if ids.is_empty() {
        return Err(PaymentError::BadRequest(
            "ticketIds names no ticket; leave it out to refund every ticket".into(),
        ));
    }
    if ids.iter().any(|id| {
        id.is_empty() || id.len() > MAX_TICKET_ID || !id.bytes().all(|b| b.is_ascii_graphic())
    }) {
        return Err(PaymentError::BadRequest(format!(
            "each ticketIds entry is a ticket id of 1 to {MAX_TICKET_ID} printable characters"
        )));
    }
    ids.sort();
    ids.dedup();
    if ids.len() > MAX_TICKETS {
        return Err(PaymentError::BadRequest(format!(
            "a refund names at most {MAX_TICKETS} tickets"
        )));
    }
    Ok(ids)
}

/// The refund parts of a payment, oldest first.
pub(crate) async fn parts_of(
    conn: &mut PgConnection,
    payment: uuid::Uuid,
) -> Result<Vec<RefundPartView>, sqlx::Error> {
    sqlx::query(
        "SELECT id, ticket_ids, amount_minor, status FROM refund_parts WHERE payment_id = $1 ORDER BY created_at, id",
    )
    .bind(payment)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        Ok(RefundPartView {
            refund_id: row.try_get::<uuid::Uuid, _>("id")?.to_string(),
            ticket_ids: row.try_get("ticket_ids")?,
            amount_minor: row.try_get("amount_minor")?,
            status: row.try_get("status")?,
        })
    })
    .collect()
}

/// What a part refunds, for its transitions: `count` tickets named, or (0)
/// the tickets left.
fn describe(count: usize) -> String {
    if count == 0 {
        "the tickets left".to_owned()
    } else {
        format!("{count} ticket(s)")
    }
}

impl Payments {
    /// Refunds `tickets` of a captured payment (empty: the tickets left):
    /// opens the part, or takes up the owed one naming the same tickets,
    /// and drives it as far as it goes now.
    pub(crate) async fn refund_in_part(
        &self,
        row: &Row_,
        tickets: Vec<String>,
        reason: &str,
    ) -> Result<(), PaymentError> {
        match self.open_part(row.id, tickets, reason).await? {
            Some(part) => self.drive_part(row, &part).await,
            None => Ok(()),
        }
    }

    /// The owed part to drive: a new one, or the owed one naming the same
    /// tickets (a retry). `None`: these tickets were refunded already.
    async fn open_part(
        &self,
        payment: uuid::Uuid,
        tickets: Vec<String>,
        reason: &str,
    ) -> Result<Option<PartRow>, PaymentError> {
        let mut tx = self.pool.begin().await?;
        let row = load(&mut tx, payment, true)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        if row.status != PaymentStatus::Captured {
            return Err(InvalidTransition {
                from: row.status.as_str().to_owned(),
                to: PaymentStatus::Refunded.as_str(),
            }
            .into());
        }
        if row.refund_requested_at.is_some() {
            return Err(PaymentError::RefundInProgress);
        }
        let owed = sqlx::query(
            "SELECT id, ticket_ids, amount_minor FROM refund_parts WHERE payment_id = $1 AND status = 'owed'",
        )
        .bind(payment)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(owed) = owed {
            let part = PartRow {
                id: owed.try_get("id")?,
                ticket_ids: owed.try_get("ticket_ids")?,
                amount: owed.try_get("amount_minor")?,
            };
            tx.commit().await?;
            return if part.ticket_ids == tickets {
                Ok(Some(part))
            } else {
                Err(PaymentError::RefundInProgress)
            };
        }
        if !tickets.is_empty() {
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM refund_parts WHERE payment_id = $1 AND status = 'refunded' AND ticket_ids = $2)",
            )
            .bind(payment)
            .bind(&tickets)
            .fetch_one(&mut *tx)
            .await?;
            if done {
                tx.commit().await?;
                return Ok(None);
            }
        }
        let part = PartRow {
            id: uuid::Uuid::new_v4(),
            ticket_ids: tickets,
            amount: None,
        };
        sqlx::query(
            "INSERT INTO refund_parts (id, payment_id, ticket_ids, reason, status) VALUES ($1, $2, $3, $4, 'owed')",
        )
        .bind(part.id)
        .bind(payment)
        .bind(&part.ticket_ids)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        note(
            &mut tx,
            payment,
            PaymentStatus::Captured,
            &format!(
                "refund of {} owed: {reason}",
                describe(part.ticket_ids.len())
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(part))
    }

    /// Voids the part's tickets (learning its amount), then asks the
    /// provider for the money. Stops where a step fails; the part stays
    /// owed and the reconciler drives it again.
    async fn drive_part(&self, row: &Row_, part: &PartRow) -> Result<(), PaymentError> {
        let tickets = (!part.ticket_ids.is_empty()).then(|| part.ticket_ids.clone());
        let amount = match self
            .void_for_refund(row, tickets, Some(part.id.to_string()))
            .await?
        {
            VoidAnswer::Voided(canceled) => canceled.voided_amount_minor,
            VoidAnswer::Refused(detail) => return self.refuse_part(part, &detail).await,
        };
        if amount <= 0 {
            return self
                .refuse_part(part, "no ticket of this payment is left to refund")
                .await;
        }
        let remaining = self.record_part_amount(row.id, part, amount).await?;
        if amount > remaining {
            // The shares of a reservation add up to its amount, so this is
            // a broken contract, not a buyer's mistake: keep it owed, loudly.
            tracing::error!(payment = %row.id, refund = %part.id, amount, remaining, "a partial refund exceeds what is left of the payment; it stays owed");
            return Err(PaymentError::AmountMismatch(format!(
                "the tickets are worth {amount} but {remaining} is left to refund"
            )));
        }
        let provider = self
            .providers
            .get(&row.provider)
            .ok_or_else(|| PaymentError::UnknownProvider(row.provider.clone()))?;
        let accepted = provider
            .refund_part(
                &row.provider_payment(),
                &RefundPart {
                    id: part.id.to_string(),
                    amount_minor: amount,
                },
            )
            .await
            .map_err(|e| match e {
                ProviderError::Refused(reason) => PaymentError::ProviderRefused(reason),
                ProviderError::Unavailable(reason) => PaymentError::ProviderUnavailable(reason),
            })?;
        let mut tx = self.pool.begin().await?;
        if accepted.settled {
            self.settle_part(&mut tx, row.id, part.id, accepted.reference.as_deref())
                .await?;
        } else if let Some(reference) = &accepted.reference {
            sqlx::query(
                "UPDATE refund_parts SET provider_ref = $2, updated_at = now() WHERE id = $1",
            )
            .bind(part.id)
            .bind(reference)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the part's amount (the ticket service's answer; a retry gets
    /// the same) and answers what is left of the payment to refund.
    async fn record_part_amount(
        &self,
        payment: uuid::Uuid,
        part: &PartRow,
        amount: i64,
    ) -> Result<i64, PaymentError> {
        if part.amount != Some(amount) {
            sqlx::query(
                "UPDATE refund_parts SET amount_minor = $2, updated_at = now() WHERE id = $1",
            )
            .bind(part.id)
            .bind(amount)
            .execute(&self.pool)
            .await?;
        }
        let remaining: i64 =
            sqlx::query_scalar("SELECT amount_minor - refunded_minor FROM payments WHERE id = $1")
                .bind(payment)
                .fetch_one(&self.pool)
                .await?;
        Ok(remaining)
    }

    /// The ticket service would not void the part's tickets: nothing moved,
    /// the part is refused with the reason on record.
    async fn refuse_part(&self, part: &PartRow, detail: &str) -> Result<(), PaymentError> {
        let mut tx = self.pool.begin().await?;
        let payment: Option<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE refund_parts SET status = 'refused', updated_at = now() WHERE id = $1 AND status = 'owed' RETURNING payment_id",
        )
        .bind(part.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(payment) = payment {
            note(
                &mut tx,
                payment,
                PaymentStatus::Captured,
                &format!(
                    "refund of {} refused: {detail}",
                    describe(part.ticket_ids.len())
                ),
            )
            .await?;
        }
        tx.commit().await?;
        Err(PaymentError::RefundRefused(detail.to_owned()))
    }

    /// The provider gave an owed part's money back: the part is refunded,
    /// the payment's refunded total grows, and a payment refunded in full
    /// becomes `refunded`. `false` when the part was settled already.
    async fn settle_part(
        &self,
        conn: &mut PgConnection,
        payment: uuid::Uuid,
        part: uuid::Uuid,
        reference: Option<&str>,
    ) -> Result<bool, PaymentError> {
        let settled = sqlx::query(
            "UPDATE refund_parts SET status = 'refunded', provider_ref = COALESCE($2, provider_ref),
                    refunded_at = now(), updated_at = now()
              WHERE id = $1 AND status = 'owed' AND amount_minor IS NOT NULL
              RETURNING amount_minor, cardinality(ticket_ids) AS tickets",
        )
        .bind(part)
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(settled) = settled else {
            return Ok(false);
        };
        let amount: i64 = settled.try_get("amount_minor")?;
        let tickets: i32 = settled.try_get("tickets")?;
        let (refunded, total, currency): (i64, i64, String) = sqlx::query_as(
            "UPDATE payments SET refunded_minor = refunded_minor + $2, updated_at = now()
              WHERE id = $1 RETURNING refunded_minor, amount_minor, currency",
        )
        .bind(payment)
        .bind(amount)
        .fetch_one(&mut *conn)
        .await?;
        let what = describe(usize::try_from(tickets).unwrap_or_default());
        note(
            conn,
            payment,
            PaymentStatus::Captured,
            &format!("refunded {amount} {currency} for {what} by the provider ({refunded} of {total} back)"),
        )
        .await?;
        if refunded >= total {
            self.move_to(conn, payment, PaymentStatus::Refunded, "refunded in parts")
                .await?;
        }
        Ok(true)
    }

    /// A refund webhook for less than the payment: the provider confirms a
    /// part (the sandbox, Stripe's `refund.updated` of a pending refund).
    /// Settles the owed part it names (its `refund_id`, which URR gave the
    /// provider) if that part is of this amount; `false` when none is owed
    /// (settled by the provider's answer already, or a late duplicate). A
    /// delivery that names no part settles nothing: a part's money is
    /// believed only when the provider says which part it is.
    pub(crate) async fn settle_part_by_webhook(
        &self,
        conn: &mut PgConnection,
        row: &Row_,
        event: &WebhookEvent,
    ) -> Result<bool, PaymentError> {
        let Some(named) = event
            .refund_id
            .as_deref()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
        else {
            return Ok(false);
        };
        let part: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM refund_parts
              WHERE id = $3 AND payment_id = $1 AND status = 'owed' AND amount_minor = $2",
        )
        .bind(row.id)
        .bind(event.amount_minor)
        .bind(named)
        .fetch_optional(&mut *conn)
        .await?;
        match part {
            Some(part) => self.settle_part(conn, row.id, part, None).await,
            None => Ok(false),
        }
    }

    /// Drives every part owed for longer than `older_than_seconds` again
    /// (the reconciler); answers how many it drove to the end.
    pub async fn finish_owed_parts(&self, older_than_seconds: f64) -> Result<usize, sqlx::Error> {
        let owed = sqlx::query(
            "SELECT id, payment_id, ticket_ids, amount_minor FROM refund_parts
              WHERE status = 'owed' AND updated_at < now() - make_interval(secs => $1)
              ORDER BY updated_at LIMIT 100",
        )
        .bind(older_than_seconds)
        .fetch_all(&self.pool)
        .await?;
        let mut finished = 0;
        for owed in owed {
            let part = PartRow {
                id: owed.try_get("id")?,
                ticket_ids: owed.try_get("ticket_ids")?,
                amount: owed.try_get("amount_minor")?,
            };
            let payment: uuid::Uuid = owed.try_get("payment_id")?;
            // Moved on, so the next pass leaves it alone for a while.
            sqlx::query("UPDATE refund_parts SET updated_at = now() WHERE id = $1")
                .bind(part.id)
                .execute(&self.pool)
                .await?;
            let Some(row) = load(&mut *self.pool.acquire().await?, payment, false).await? else {
                continue;
            };
            match self.drive_part(&row, &part).await {
                Ok(()) => finished += 1,
                Err(error) => {
                    tracing::warn!(%error, payment = %payment, refund = %part.id, "an owed partial refund is still owed; retrying later")
                }
            }
        }
        Ok(finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_are_one_sorted_set_of_short_ids() {
        let ids = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            normalise_ticket_ids(None).expect("accepted"),
            Vec::<String>::new()
        );
        assert_eq!(
            normalise_ticket_ids(ids(&["b", "a", "b"])).expect("accepted"),
            vec!["a".to_owned(), "b".to_owned()]
        );
        for bad in [ids(&[]), ids(&[""]), ids(&["a b"]), ids(&[&"x".repeat(65)])] {
            assert!(matches!(
                normalise_ticket_ids(bad),
                Err(PaymentError::BadRequest(_))
            ));
        }
        let many: Vec<String> = (0..=MAX_TICKETS).map(|i| i.to_string()).collect();
        assert!(normalise_ticket_ids(Some(many)).is_err());
    }
}
