//! A payment as its owner reads it: the view, its history and when the
//! buyer's page should read it again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};

use crate::error::PaymentError;
use crate::state::PaymentStatus;

/// A payment as its owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub payment_id: String,
    pub event: String,
    pub hold_id: String,
    pub user_id: String,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: String,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// While a verdict or the tickets are on their way: when to read the
    /// payment again. Absent once nothing more will happen by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_after_ms: Option<u64>,
    /// How much of `amount_minor` has been given back (refunds in parts).
    pub refunded_minor: i64,
    /// The refunds of some tickets, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<crate::refund_parts::RefundPartView>,
    pub transitions: Vec<TransitionView>,
}

/// How often a buyer's page should read a payment that is still moving.
/// The server says so, as the queue does with its `pollAfterMs`: a crowd
/// of checkout pages polling every 100 ms (what the load generator did)
/// spent the payment service on reads, and creating and capturing payments
/// took seconds (issue 24).
pub const POLL_AFTER_MS: u64 = 500;

/// [`PaymentView::poll_after_ms`]: a confirmed payment awaiting the
/// provider's verdict, or a capture awaiting its tickets.
pub fn poll_after_ms(status: PaymentStatus, confirmed: bool, ticketed: bool) -> Option<u64> {
    match status {
        PaymentStatus::Created if confirmed => Some(POLL_AFTER_MS),
        PaymentStatus::Authorized => Some(POLL_AFTER_MS),
        PaymentStatus::Captured if !ticketed => Some(2 * POLL_AFTER_MS),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransitionView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    pub at_ms: i64,
}

/// A payment with its history, read on `conn` (inside a transaction, it sees
/// that transaction's writes).
pub(super) async fn view_on(
    conn: &mut PgConnection,
    user: &str,
    id: uuid::Uuid,
) -> Result<PaymentView, PaymentError> {
    let row = sqlx::query(
        "SELECT id, event_id, hold_id, user_id, status, amount_minor, currency, provider, payment_method,
                reservation_id, failure_reason, refunded_minor
         FROM payments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(PaymentError::UnknownPayment)?;
    let owner: String = row.try_get("user_id")?;
    // Someone else's payment reads as unknown.
    if owner != user {
        return Err(PaymentError::UnknownPayment);
    }
    let transitions = sqlx::query(
        "SELECT from_status, to_status, reason, at FROM payment_transitions WHERE payment_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|t| {
        Ok(TransitionView {
            from: t.try_get("from_status")?,
            to: t.try_get("to_status")?,
            reason: t.try_get("reason")?,
            at_ms: t.try_get::<DateTime<Utc>, _>("at")?.timestamp_millis(),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let status: String = row.try_get("status")?;
    let status = PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Failed);
    let payment_method: Option<String> = row.try_get("payment_method")?;
    let reservation_id: Option<String> = row.try_get("reservation_id")?;
    Ok(PaymentView {
        payment_id: id.to_string(),
        event: row.try_get("event_id")?,
        hold_id: row.try_get("hold_id")?,
        user_id: owner,
        status,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        provider: row.try_get("provider")?,
        poll_after_ms: poll_after_ms(status, payment_method.is_some(), reservation_id.is_some()),
        payment_method,
        reservation_id,
        failure_reason: row.try_get("failure_reason")?,
        refunded_minor: row.try_get("refunded_minor")?,
        refunds: crate::refund_parts::parts_of(conn, id).await?,
        transitions,
    })
}
