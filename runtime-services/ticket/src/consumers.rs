//! The ticket service's Kafka consumers:
//!
//! * `payment-events`: the fallback confirmation path. A captured payment
//!   confirms its hold, a refund cancels it, each exactly once between this
//!   path and the REST call (hold status + `processed_events` in the same
//!   transaction). A payment whose hold can no longer be confirmed is
//!   recorded in `unapplied_payments` (the payment service's reconciler
//!   refunds it) and the message is done.
//! * `transfer-events`: the ownership log of each ticket (the seed produced
//!   these and nothing consumed them).

use chrono::{DateTime, Utc};
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use urr_outbox::consumer::{HandleError, Handler};
use urr_service_common::contracts::{
    CancelRequest, ConfirmRequest, PAYMENT_EVENT_V1, PAYMENT_EVENTS, PaymentEvent,
    PaymentEventKind, TRANSFER_EVENT_V1, TRANSFER_EVENTS, TransferEvent,
};

use crate::confirm::{ConfirmPath, InboxEntry};
use crate::error::TicketError;
use crate::holds::HoldDesk;

/// `processed_events.consumer` of the payment-events consumer.
pub const PAYMENT_CONSUMER: &str = "ticket/payment-events";

fn retry_or_final(error: TicketError) -> Result<Option<String>, HandleError> {
    if error.is_transient() {
        Err(HandleError::Retry(error.to_string()))
    } else {
        Ok(Some(error.to_string()))
    }
}

/// Applies `payment-events` for one event.
#[derive(Debug, Clone)]
pub struct PaymentEventsHandler {
    pub desk: HoldDesk,
}

impl PaymentEventsHandler {
    /// Handles one message; `Ok` means done (applied, a duplicate, or recorded
    /// as unapplicable).
    pub async fn apply(&self, message: &PaymentEvent) -> Result<(), HandleError> {
        if message.event != self.desk.catalog.event() {
            return Ok(()); // another event's payment on a shared topic
        }
        let inbox = Some(InboxEntry {
            consumer: PAYMENT_CONSUMER,
            message_id: &message.message_id,
        });
        let unapplied = match message.kind {
            PaymentEventKind::Captured => {
                let request = ConfirmRequest {
                    payment_id: message.payment_id.clone(),
                    amount_minor: message.amount_minor,
                    currency: message.currency.clone(),
                };
                match self
                    .desk
                    .confirm(
                        &message.hold_id,
                        &request,
                        ConfirmPath::Kafka,
                        inbox,
                        message.traceparent.as_deref(),
                    )
                    .await
                {
                    Ok(_) => None,
                    Err(error) => retry_or_final(error)?,
                }
            }
            PaymentEventKind::Refunded => {
                let request = CancelRequest {
                    payment_id: message.payment_id.clone(),
                    reason: "refunded".into(),
                    ticket_ids: None,
                    refund_id: None,
                };
                match self
                    .desk
                    .cancel(
                        &message.hold_id,
                        &request,
                        inbox,
                        message.traceparent.as_deref(),
                    )
                    .await
                {
                    Ok(_) => None,
                    Err(error) => retry_or_final(error)?,
                }
            }
        };
        if let Some(reason) = unapplied {
            tracing::warn!(payment = %message.payment_id, hold = %message.hold_id, %reason, "payment event cannot be applied");
            self.record_unapplied(message, &reason)
                .await
                .map_err(|e| HandleError::Retry(e.to_string()))?;
        }
        Ok(())
    }

    async fn record_unapplied(
        &self,
        message: &PaymentEvent,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.desk.pool.begin().await?;
        urr_outbox::inbox::claim(&mut tx, PAYMENT_CONSUMER, &message.message_id).await?;
        if let Ok(hold) = uuid::Uuid::parse_str(&message.hold_id) {
            sqlx::query(
                "INSERT INTO unapplied_payments (payment_id, hold_id, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (payment_id) DO NOTHING",
            )
            .bind(&message.payment_id)
            .bind(hold)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

impl Handler for PaymentEventsHandler {
    async fn handle(&self, payload: &[u8]) -> Result<(), HandleError> {
        let message: PaymentEvent = serde_json::from_slice(payload)
            .map_err(|e| HandleError::Poison(format!("not a payment event: {e}")))?;
        if message.schema != PAYMENT_EVENT_V1 {
            return Err(HandleError::Poison(format!(
                "unknown schema {:?}",
                message.schema
            )));
        }
        // The payment's trace: every line logged while applying it carries
        // the trace id of the buyer request that paid.
        let trace_id = message
            .traceparent
            .as_deref()
            .and_then(urr_service_common::trace::trace_id)
            .unwrap_or_default()
            .to_owned();
        let span = tracing::info_span!(
            "payment-event",
            payment = %message.payment_id,
            trace_id = %trace_id
        );
        self.apply(&message).instrument(span).await
    }

    fn poisoned(&self, _reason: &str) {
        self.desk.metrics.poisoned_messages.inc();
    }
}

/// Records `transfer-events` in `ticket_ownership_log` (idempotent on the message id).
#[derive(Debug, Clone)]
pub struct TransferEventsHandler {
    pub desk: HoldDesk,
}

impl Handler for TransferEventsHandler {
    async fn handle(&self, payload: &[u8]) -> Result<(), HandleError> {
        let message: TransferEvent = serde_json::from_slice(payload)
            .map_err(|e| HandleError::Poison(format!("not a transfer event: {e}")))?;
        if message.schema != TRANSFER_EVENT_V1 {
            return Err(HandleError::Poison(format!(
                "unknown schema {:?}",
                message.schema
            )));
        }
        if message.event != self.desk.catalog.event() {
            return Ok(());
        }
        let ticket = uuid::Uuid::parse_str(&message.ticket_id)
            .map_err(|_| HandleError::Poison("ticketId is not a UUID".into()))?;
        let at = DateTime::<Utc>::from_timestamp_millis(message.occurred_at_ms)
            .ok_or_else(|| HandleError::Poison("occurredAtMs out of range".into()))?;
        sqlx::query(
            "INSERT INTO ticket_ownership_log (message_id, ticket_id, from_user_id, to_user_id, occurred_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&message.message_id)
        .bind(ticket)
        .bind(&message.from_user_id)
        .bind(&message.to_user_id)
        .bind(at)
        .execute(&self.desk.pool)
        .await
        .map_err(|e| HandleError::Retry(e.to_string()))?;
        Ok(())
    }

    fn poisoned(&self, _reason: &str) {
        self.desk.metrics.poisoned_messages.inc();
    }
}

/// Starts both consumers (group `urr-ticket-<event>`), each until `stop`.
pub fn spawn(
    brokers: &str,
    desk: &HoldDesk,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, urr_outbox::kafka::SetupError> {
    let group = format!("urr-ticket-{}", desk.catalog.event());
    let payments: StreamConsumer =
        urr_outbox::kafka::consumer_config(brokers, &format!("{group}-payments"))?.create()?;
    payments.subscribe(&[PAYMENT_EVENTS])?;
    let transfers: StreamConsumer =
        urr_outbox::kafka::consumer_config(brokers, &format!("{group}-transfers"))?.create()?;
    transfers.subscribe(&[TRANSFER_EVENTS])?;
    Ok(vec![
        tokio::spawn(urr_outbox::consumer::run(
            payments,
            PaymentEventsHandler { desk: desk.clone() },
            stop.clone(),
        )),
        tokio::spawn(urr_outbox::consumer::run(
            transfers,
            TransferEventsHandler { desk: desk.clone() },
            stop,
        )),
    ])
}
