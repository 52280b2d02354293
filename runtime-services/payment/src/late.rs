//! Provider verdicts that reach a payment which had already ended (the
//! buyer canceled while the provider was still answering, or it failed):
//! never dropped as stale, because money or a card hold is at stake. A
//! capture is refunded; an authorization of a canceled payment is voided at
//! the provider, so it is never captured and the buyer's funds are released.

use sqlx::PgConnection;

use crate::flow::{Payments, Row_};
use crate::refunds::note;
use crate::webhook::WebhookEvent;

impl Payments {
    /// A capture reached a payment that had failed or was canceled (a
    /// cancel racing the authorization, a failure after it). Its hold slot
    /// may already belong to another payment, so it does not become captured
    /// and no ticket is asked for: it is marked as owing the money back
    /// (`captured_at`, which the reconciler re-drives) and refunded after
    /// the caller's commit.
    pub(crate) async fn record_late_capture(
        &self,
        conn: &mut PgConnection,
        row: &Row_,
        event: &WebhookEvent,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE payments SET captured_at = now(), updated_at = now(),
                    provider_ref = COALESCE(provider_ref, $2) WHERE id = $1",
        )
        .bind(row.id)
        .bind(&event.provider_ref)
        .execute(&mut *conn)
        .await?;
        note(
            conn,
            row.id,
            row.status,
            &format!(
                "captured by the provider after the payment was {}; refunding",
                row.status.as_str()
            ),
        )
        .await
    }

    /// An authorization reached a payment the buyer canceled while the
    /// provider was answering: recorded, and voided after the caller's
    /// commit ([`Self::void_late_authorization`]) instead of being captured.
    pub(crate) async fn record_late_authorization(
        &self,
        conn: &mut PgConnection,
        row: &Row_,
        event: &WebhookEvent,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE payments SET provider_ref = COALESCE(provider_ref, $2), updated_at = now() WHERE id = $1",
        )
        .bind(row.id)
        .bind(&event.provider_ref)
        .execute(&mut *conn)
        .await?;
        note(
            conn,
            row.id,
            row.status,
            &format!(
                "authorized by the provider after the payment was {}; voiding the authorization",
                row.status.as_str()
            ),
        )
        .await
    }

    /// Asks the provider to void `row`'s authorization. A failure is logged:
    /// the authorization then lapses at the provider on its own, uncaptured
    /// (and a capture that still came would be refunded).
    pub(crate) async fn void_late_authorization(&self, row: &Row_) {
        let Some(provider) = self.providers.get(&row.provider) else {
            tracing::error!(payment = %row.id, provider = %row.provider, "cannot void a late authorization: unknown provider");
            return;
        };
        match provider.void(&row.provider_payment()).await {
            Ok(()) => tracing::info!(payment = %row.id, "late authorization voided"),
            Err(error) => {
                tracing::warn!(%error, payment = %row.id, "void of a late authorization failed; it lapses at the provider")
            }
        }
    }
}
