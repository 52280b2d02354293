//! The payment flow: intents, the provider's webhooks and the dual-path
//! confirmation (refunds are in [`crate::refunds`]).
//!
//! On capture, the payment's new state and a `payment-events` message are
//! committed in one transaction (the outbox); then the ticket service is
//! called synchronously. If that call fails, the relay's Kafka message makes
//! the ticket service confirm anyway, and the reconciler retries the call:
//! whichever path arrives first confirms, the other finds it done.
//!
//! One room per job, each an `impl Payments` block:
//!
//! * [`view`]: a payment as its owner reads it, and when to read it again.
//! * [`intents`]: `create`, `view`, `confirm` (authorization at the
//!   provider) and `cancel`, the buyer's own calls.
//! * [`webhooks`]: signed verdicts applied in one transaction, duplicates and
//!   out-of-order deliveries harmless, and what follows their commit.
//! * [`ticket_sync`]: the outbox message and the synchronous confirm or
//!   cancel at the ticket service, and the reservation either path reports.
//! * [`redrive`]: the reconciler's view of overdue payments and its re-drive.
//! * [`gauges`]: the by-state gauge.
//!
//! This file keeps what every room shares: the [`Payments`] handle, the row
//! as stored and its loading, and the one recorded state transition.

mod gauges;
mod intents;
mod redrive;
mod ticket_sync;
mod view;
mod webhooks;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::PaymentError;
use crate::provider::{ProviderPayment, Providers};
use crate::state::{PaymentStatus, TransitionError, transition};
use crate::telemetry::PaymentMetrics;
use crate::ticket_client::TicketClient;

pub use intents::CreateAnswer;
pub use ticket_sync::record_reservation_on;
pub use view::{POLL_AFTER_MS, PaymentView, TransitionView, poll_after_ms};
pub use webhooks::WebhookOutcome;

/// The payment service's handle on its database, the ticket service and the
/// providers: cheap to clone (pools and `Arc`s), one per process.
#[derive(Debug, Clone)]
pub struct Payments {
    pub pool: PgPool,
    pub ticket: TicketClient,
    pub providers: Providers,
    pub provider: &'static str,
    pub event: String,
    pub metrics: Arc<PaymentMetrics>,
    /// Until when buyers may refund ([`crate::refund_policy`]).
    pub buyer_refunds: crate::refund_policy::BuyerRefunds,
}

pub(crate) struct Row_ {
    pub(crate) id: uuid::Uuid,
    pub(crate) hold: String,
    pub(crate) user: String,
    pub(crate) status: PaymentStatus,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) provider: String,
    pub(crate) provider_ref: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) traceparent: Option<String>,
    pub(crate) confirm_started_at: Option<DateTime<Utc>>,
    /// Set on a failed or canceled payment too when a capture reached it
    /// anyway: the money is owed back until it is refunded.
    pub(crate) captured_at: Option<DateTime<Utc>>,
    /// Set while a refund of a captured payment is owed (see
    /// [`crate::refunds`]): the reconciler finishes it.
    pub(crate) refund_requested_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, hold_id, user_id, status, amount_minor, currency, provider, provider_ref, payment_method, traceparent, confirm_started_at, captured_at, refund_requested_at";

fn read_row(row: &sqlx::postgres::PgRow) -> Result<Row_, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Row_ {
        id: row.try_get("id")?,
        hold: row.try_get("hold_id")?,
        user: row.try_get("user_id")?,
        status: PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Failed),
        amount: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        provider: row.try_get("provider")?,
        provider_ref: row.try_get("provider_ref")?,
        method: row.try_get("payment_method")?,
        traceparent: row.try_get("traceparent")?,
        confirm_started_at: row.try_get("confirm_started_at")?,
        captured_at: row.try_get("captured_at")?,
        refund_requested_at: row.try_get("refund_requested_at")?,
    })
}

impl Row_ {
    pub(crate) fn provider_payment(&self) -> ProviderPayment {
        ProviderPayment {
            payment_id: self.id.to_string(),
            amount_minor: self.amount,
            currency: self.currency.clone(),
            provider_ref: self.provider_ref.clone(),
        }
    }
}

pub(crate) fn parse_id(id: &str) -> Result<uuid::Uuid, PaymentError> {
    uuid::Uuid::parse_str(id).map_err(|_| PaymentError::UnknownPayment)
}

pub(crate) async fn load(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    lock: bool,
) -> Result<Option<Row_>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|row| read_row(&row))
        .transpose()
}

impl Payments {
    fn record(&self, to: PaymentStatus) {
        self.metrics.entered(to.as_str());
    }

    pub(crate) async fn move_to(
        &self,
        conn: &mut PgConnection,
        id: uuid::Uuid,
        to: PaymentStatus,
        reason: &str,
    ) -> Result<PaymentStatus, TransitionError> {
        let from = transition(conn, id, to, reason).await?;
        self.record(to);
        Ok(from)
    }
}
