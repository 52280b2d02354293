#![forbid(unsafe_code)]
//! # urr-payment: payments that behave like money moves
//!
//! * [`state`]: the state machine (created → authorized → captured | failed |
//!   canceled → refunded); every transition conditional and recorded.
//! * [`provider`]: the `Provider` trait and the [`provider::sandbox`] gateway
//!   (asynchronous verdicts by signed webhook, latency, failures, duplicates),
//!   [`provider::stripe`] and [`provider::toss`] (TossPayments' widget flow).
//! * [`webhook`]: HMAC signatures with a replay window.
//! * [`flow`]: intents priced by the ticket service, webhooks (duplicates and
//!   out-of-order deliveries harmless), capture → outbox + synchronous confirm.
//! * [`ticket_client`] + [`breaker`]: the synchronous path through tower's
//!   timeout and retry layers and a circuit breaker layer.
//! * [`refund_policy`]: who may refund and until when (the Event's
//!   `spec.refundPolicy`); [`refunds`]: refunds owed until done (tickets voided first, or the
//!   refusal recorded); [`refund_parts`]: refunds of some tickets, by their
//!   share of the payment; [`late`]: a capture reaching an ended payment is
//!   refunded, an authorization reaching a canceled one voided.
//! * [`reconciler`]: re-drives stuck payments (and owed refunds); [`consumers`]: records
//!   reservations confirmed through Kafka.
//! * [`routes`]: `routers(state)`, public and internal (API table there).

pub mod breaker;
pub mod config;
pub mod consumers;
pub mod error;
pub mod flow;
pub mod late;
pub mod lost_verdicts;
pub mod provider;
pub mod reconciler;
pub mod refund_parts;
pub mod refund_policy;
pub mod refunds;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod ticket_client;
pub mod webhook;

pub use routes::{AppState, openapi_document, routers};

/// The embedded schema migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Its migrations, then the outbox and inbox tables of [`urr_outbox`].
pub async fn prepare_database(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    urr_outbox::prepare_database(pool, &MIGRATOR).await
}
