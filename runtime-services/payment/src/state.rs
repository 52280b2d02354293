//! The payment state machine, and the one place a status changes.
//!
//! ```text
//! created ──► authorized ──► captured ──► refunded
//!    │            │                          ▲
//!    ├──► failed ◄┘                          │ (a late capture, refunded)
//!    └──► canceled ──────────────────────────┘
//! ```
//!
//! An authorized payment cannot be canceled: its capture is already on its
//! way, and a canceled payment would drop it (money taken, no ticket). A
//! capture that still reaches a failed or canceled payment is refunded, and
//! the refund's webhook moves it to `refunded`.
//!
//! Every change is a conditional `UPDATE … WHERE status = ANY(allowed)` plus a
//! row in `payment_transitions`, in the caller's transaction: two racing
//! webhooks cannot both move a payment, and nothing moves without a record.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaymentStatus {
    Created,
    Authorized,
    Captured,
    Failed,
    Canceled,
    Refunded,
}

pub const ALL: [PaymentStatus; 6] = [
    PaymentStatus::Created,
    PaymentStatus::Authorized,
    PaymentStatus::Captured,
    PaymentStatus::Failed,
    PaymentStatus::Canceled,
    PaymentStatus::Refunded,
];

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The states a payment may move to `self` from.
    pub fn allowed_from(self) -> &'static [PaymentStatus] {
        use PaymentStatus::*;
        match self {
            Created => &[],
            Authorized => &[Created],
            Captured => &[Authorized],
            Failed => &[Created, Authorized],
            Canceled => &[Created],
            Refunded => &[Captured, Failed, Canceled],
        }
    }

    /// No further step of the buyer's flow (a late capture of a failed or
    /// canceled payment can still be refunded).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PaymentStatus::Failed | PaymentStatus::Canceled | PaymentStatus::Refunded
        )
    }
}

/// A refused transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payment that is {from} cannot become {to}")]
pub struct InvalidTransition {
    pub from: String,
    pub to: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    #[error("unknown payment")]
    Unknown,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Moves `payment` to `to` if its current status allows it, recording why.
pub async fn transition(
    conn: &mut PgConnection,
    payment: uuid::Uuid,
    to: PaymentStatus,
    reason: &str,
) -> Result<PaymentStatus, TransitionError> {
    let allowed: Vec<&str> = to.allowed_from().iter().map(|s| s.as_str()).collect();
    let moved: Option<String> = sqlx::query_scalar(
        "WITH old AS (SELECT status FROM payments WHERE id = $1 FOR UPDATE)
         UPDATE payments p SET status = $2, updated_at = now(),
                captured_at = CASE WHEN $2 = 'captured' THEN now() ELSE p.captured_at END
         FROM old WHERE p.id = $1 AND old.status = ANY($3)
         RETURNING old.status",
    )
    .bind(payment)
    .bind(to.as_str())
    .bind(&allowed)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(from) = moved else {
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM payments WHERE id = $1")
                .bind(payment)
                .fetch_optional(&mut *conn)
                .await?;
        return match current {
            None => Err(TransitionError::Unknown),
            Some(from) => Err(InvalidTransition {
                from,
                to: to.as_str(),
            }
            .into()),
        };
    };
    sqlx::query(
        "INSERT INTO payment_transitions (payment_id, from_status, to_status, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(payment)
    .bind(&from)
    .bind(to.as_str())
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(PaymentStatus::parse(&from).unwrap_or(PaymentStatus::Created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_allows_exactly_the_documented_moves() {
        use PaymentStatus::*;
        let allowed: Vec<(PaymentStatus, PaymentStatus)> = ALL
            .into_iter()
            .flat_map(|to| to.allowed_from().iter().map(move |from| (*from, to)))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Created, Authorized),
                (Authorized, Captured),
                (Created, Failed),
                (Authorized, Failed),
                (Created, Canceled),
                (Captured, Refunded),
                (Failed, Refunded),
                (Canceled, Refunded),
            ]
        );
        for status in ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert!(Refunded.is_terminal() && !Captured.is_terminal());
    }
}
