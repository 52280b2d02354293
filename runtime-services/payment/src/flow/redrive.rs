//! The reconciler's side of the flow: the payments whose next step is
//! overdue, and the re-drive of one (the provider asked first, then the
//! step that was missed).

use sqlx::Row;

use super::{Payments, load};
use crate::error::PaymentError;
use crate::state::PaymentStatus;

impl Payments {
    /// Payments whose next step is overdue, for the reconciler.
    pub async fn stuck(
        &self,
        older_than_seconds: f64,
    ) -> Result<Vec<(uuid::Uuid, PaymentStatus, bool)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, status, payment_method IS NOT NULL AS confirmed FROM payments
             WHERE updated_at < now() - make_interval(secs => $1)
               AND (status = 'authorized'
                    OR (status = 'captured' AND (reservation_id IS NULL OR refund_requested_at IS NOT NULL))
                    OR (status IN ('canceled', 'failed') AND captured_at IS NOT NULL)
                    OR (status = 'created'))
             ORDER BY updated_at LIMIT 200",
        )
        .bind(older_than_seconds)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok((
                    row.try_get("id")?,
                    PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Failed),
                    row.try_get("confirmed")?,
                ))
            })
            .collect()
    }

    /// Re-drives one stuck payment.
    pub async fn redrive(
        &self,
        id: uuid::Uuid,
        abandon_after_seconds: f64,
    ) -> Result<(), PaymentError> {
        let row = load(&mut *self.pool.acquire().await?, id, false)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        // A verdict may have been lost: what the provider says comes first.
        let confirmed = row.status == PaymentStatus::Created && row.method.is_some();
        let undecided = matches!(row.status, PaymentStatus::Authorized)
            || confirmed
            || (row.status == PaymentStatus::Captured && row.refund_requested_at.is_some());
        if undecided {
            let answer = self.settle_from_provider(&row).await?;
            let touch =
                sqlx::query("UPDATE payments SET updated_at = now() WHERE id = $1").bind(id);
            match answer {
                crate::lost_verdicts::Settled::Moved(_) => {
                    touch.execute(&self.pool).await?;
                    return Ok(());
                }
                // The buyer confirmed and the provider cannot say what
                // became of it (down, an unknown status): money may have
                // moved, so the payment is neither abandoned nor confirmed
                // again; it waits, and the next pass asks again.
                crate::lost_verdicts::Settled::Unknown(reason) if confirmed => {
                    touch.execute(&self.pool).await?;
                    return Err(PaymentError::ProviderUnavailable(reason));
                }
                _ => {}
            }
        }
        match row.status {
            PaymentStatus::Authorized => {
                if let Some(provider) = self.providers.get(&row.provider) {
                    provider
                        .capture(&row.provider_payment())
                        .await
                        .map_err(|e| PaymentError::ProviderUnavailable(e.to_string()))?;
                }
            }
            // A refund owed (its provider or ticket call failed): finish it
            // before anything else, never confirm the tickets again.
            PaymentStatus::Captured if row.refund_requested_at.is_some() => {
                self.start_refund(&row, "refund re-driven by the reconciler")
                    .await?
            }
            PaymentStatus::Captured => self.confirm_reservation(id).await,
            // A late capture whose refund has not come back: ask again.
            PaymentStatus::Canceled | PaymentStatus::Failed if row.captured_at.is_some() => {
                self.request_refund(&row).await?
            }
            PaymentStatus::Created => {
                // Since the buyer last acted (the intent, or its confirm),
                // not since the last pass: every pass moves `updated_at`,
                // so an age from it never reached `abandon_after`.
                let age: f64 = sqlx::query_scalar(
                    "SELECT EXTRACT(EPOCH FROM (now() - COALESCE(confirm_started_at, created_at)))::float8
                       FROM payments WHERE id = $1",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
                match &row.method {
                    // The provider never answered the authorization: ask again.
                    Some(method) if age < abandon_after_seconds => {
                        self.authorize(&row, method).await?
                    }
                    // Never confirmed, or lost: the buyer walked away.
                    _ if age >= abandon_after_seconds => {
                        let mut tx = self.pool.begin().await?;
                        self.move_to(&mut tx, id, PaymentStatus::Canceled, "abandoned")
                            .await?;
                        tx.commit().await?;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        sqlx::query("UPDATE payments SET updated_at = now() WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
