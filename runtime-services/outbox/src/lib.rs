#![forbid(unsafe_code)]
//! # urr-outbox: exactly-once effects over an at-least-once broker
//!
//! The ticket and payment services change their database and tell the rest of
//! the platform about it through Kafka. Writing both directly can lose one of
//! them (crash between the commit and the send). So:
//!
//! * [`enqueue`] writes the message into the `outbox` table **inside the
//!   caller's transaction**: the message exists if and only if the change does.
//! * [`Relay`] publishes unpublished rows in id order and marks them published.
//!   A crash after the send and before the mark re-sends on restart
//!   (at-least-once); `LISTEN/NOTIFY` wakes it at once, so the lag is the
//!   broker's round trip, not a polling interval.
//! * [`inbox::claim`] records a consumed message id in `processed_events`
//!   inside the consumer's transaction, so a redelivered message has no second
//!   effect. Together: exactly-once *effects*.
//! * [`kafka`]: client configuration and topic creation shared by both services.
//! * [`start`]: the settings and the start-up steps both services share.

pub mod consumer;
pub mod inbox;
pub mod kafka;
pub mod relay;
pub mod schema;
pub mod start;

pub use relay::{Relay, RelayMetrics, RelaySettings};
pub use schema::{ensure_schema, prepare_database};
pub use start::OutboxArgs;

use serde::Serialize;
use sqlx::PgConnection;

/// Channel the relay listens on; [`enqueue`] notifies it (delivered at commit).
pub const NOTIFY_CHANNEL: &str = "urr_outbox";

/// Adds `payload` (as JSON) for `topic` with message `key` to the outbox, in
/// the caller's transaction. Returns the row id (the publication order).
pub async fn enqueue(
    conn: &mut PgConnection,
    topic: &str,
    key: &str,
    payload: &impl Serialize,
) -> Result<i64, sqlx::Error> {
    let payload = serde_json::to_value(payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO outbox (topic, message_key, payload) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(topic)
    .bind(key)
    .bind(payload)
    .fetch_one(&mut *conn)
    .await?;
    // NOTIFY inside a transaction is delivered at commit, never before: the
    // relay cannot wake for a row it cannot see yet.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}
