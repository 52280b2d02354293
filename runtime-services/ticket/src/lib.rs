#![forbid(unsafe_code)]
//! # urr-ticket: seat inventory and holds that can never double-sell
//!
//! * [`settings`]: the seat map from the Event spec, checked at start.
//! * [`inventory`]: idempotent import into PostgreSQL, Redis restore,
//!   availability (≤ 1 s old) and stats for the operator.
//! * [`locks`] → [`holds`] → [`confirm`]: the triple protection. Redis Lua
//!   locks with fencing tokens turn losers away before PostgreSQL; the seat
//!   rows change only where still available (status check, `version`
//!   bumped); confirm re-checks the fencing token, so an expired hold can
//!   never be confirmed even after someone else took the seat. A unique
//!   index on valid tickets per seat is the last line.
//! * [`flights`]: single flight of lock attempts on the same seats within a
//!   replica, so a stampede asks Redis once per seat set, not once per buyer.
//! * [`idempotency`]: `Idempotency-Key` on holds, recognised at Redis.
//! * [`tickets`]: my tickets, transfers, ownership history.
//! * [`consumers`]: `payment-events` (fallback confirmation) and
//!   `transfer-events` (ownership log); [`urr_outbox`] relays this service's
//!   own `reservation-events` and `transfer-events`.
//! * [`reaper`]: hold expiry in the background.
//! * [`routes`]: `routers(state)`, public and internal (API table there).

pub mod cancel;
pub mod config;
pub mod confirm;
pub mod consumers;
pub mod error;
pub mod flights;
pub mod holds;
pub mod idempotency;
pub mod inventory;
pub mod locks;
pub mod reaper;
pub mod routes;
pub mod settings;
pub mod telemetry;
pub mod tickets;
pub mod views;

pub use routes::{AppState, openapi_document, routers};

/// The embedded schema migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Prepares a database for this service: its migrations, then the outbox
/// and inbox tables of [`urr_outbox`].
pub async fn prepare_database(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    urr_outbox::prepare_database(pool, &MIGRATOR).await
}
