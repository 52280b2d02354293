//! Consumes `reservation-events` from the ticket service: records the
//! reservation of a payment confirmed through the Kafka path (the payment
//! service did not see that confirmation itself), so `GET /v1/payments/{id}`
//! shows it and the reconciler stops re-driving the payment.

use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use urr_outbox::consumer::{HandleError, Handler};
use urr_service_common::contracts::{
    RESERVATION_EVENT_V1, RESERVATION_EVENTS, ReservationEvent, ReservationEventKind,
};

use crate::flow::Payments;

/// This consumer's name in `processed_events`.
pub const CONSUMER: &str = "payment/reservation-events";

#[derive(Debug, Clone)]
pub struct ReservationEventsHandler {
    pub payments: Payments,
}

impl Handler for ReservationEventsHandler {
    async fn handle(&self, payload: &[u8]) -> Result<(), HandleError> {
        let message: ReservationEvent = serde_json::from_slice(payload)
            .map_err(|e| HandleError::Poison(format!("not a reservation event: {e}")))?;
        if message.schema != RESERVATION_EVENT_V1 {
            return Err(HandleError::Poison(format!(
                "unknown schema {:?}",
                message.schema
            )));
        }
        if message.event != self.payments.event || message.kind != ReservationEventKind::Confirmed {
            return Ok(());
        }
        let Ok(payment) = uuid::Uuid::parse_str(&message.payment_id) else {
            return Ok(()); // not one of ours
        };
        // The claim and the effect commit together: a redelivery finds the
        // claim and does nothing (the update only fills an empty reservation
        // id anyway, so even a lost claim could not overwrite one).
        let retry = |e: sqlx::Error| HandleError::Retry(e.to_string());
        let mut tx = self.payments.pool.begin().await.map_err(retry)?;
        if !urr_outbox::inbox::claim(&mut tx, CONSUMER, &message.message_id)
            .await
            .map_err(retry)?
        {
            return Ok(());
        }
        crate::flow::record_reservation_on(&mut tx, payment, &message.reservation_id)
            .await
            .map_err(retry)?;
        tx.commit().await.map_err(retry)
    }
}

pub fn spawn(
    brokers: &str,
    payments: &Payments,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, urr_outbox::kafka::SetupError> {
    let consumer: StreamConsumer = urr_outbox::kafka::consumer_config(
        brokers,
        &format!("urr-payment-{}-reservations", payments.event),
    )?
    .create()?;
    consumer.subscribe(&[RESERVATION_EVENTS])?;
    Ok(tokio::spawn(urr_outbox::consumer::run(
        consumer,
        ReservationEventsHandler {
            payments: payments.clone(),
        },
        stop,
    )))
}
