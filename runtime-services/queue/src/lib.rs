#![forbid(unsafe_code)]
//! # urr-queue: the two-tier waiting room
//!
//! * **Tier 1** (anonymous, edge-facing): `POST /v1/rooms/{room}/numbers` hands a
//!   visitor a number (from a block of numbers its replica leased, see
//!   `store/numbers.rs`) and a signed `urr-vwr-token` cookie;
//!   `GET /v1/rooms/{room}/serving` returns the serving counter the edge computes.
//! * **Tier 2** (authenticated): `POST /v1/events/{event}/queue` joins,
//!   `GET …/queue/me` polls (position, ETA range, next poll interval, and on
//!   admission an `urr-entry-token`), `POST …/queue/heartbeat`, `DELETE
//!   …/queue/me` leaves, `GET …/queue/audit` publishes the pre-queue draw.
//! * **Admitter** ([`admitter`]): a 1 s batch, one Lua call per tick, one leader.
//! * the waiting page at `/waiting/{room}`, `/healthz` and `/readyz`; on the
//!   internal listener (`URR_INTERNAL_LISTEN`, in-cluster only)
//!   `/internal/stats` for the operator and `/metrics`.

pub mod admission;
pub mod admitter;
pub mod client_address;
pub mod config;
pub mod error;
pub mod eta;
pub mod fairness;
pub mod inventory;
pub mod keys;
pub mod merkle;
pub mod pass;
pub mod policy;
pub mod routes;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod waiting_page;

pub use routes::{AppState, openapi_document, routers};
