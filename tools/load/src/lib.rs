#![forbid(unsafe_code)]
//! # urr-load: a flash crowd through the whole platform
//!
//! Each buyer is a task that walks the path a real buyer walks: the edge gate
//! ([`gate`]: the decision the CloudFront function makes, from the entry the
//! operator published to the KeyValueStore, with the same token check and
//! serving counter from `urr-service-common`), a tier-1 number, the tier-2 queue at
//! the poll interval the server gives, a seat hold with the entry token, a
//! payment (some abandon, some are declined, some retry with the same
//! `Idempotency-Key`), and leaving the queue. The run is bounded in time and
//! count and refuses any target that is not loopback.
//!
//! Afterwards [`invariants`] checks the databases directly for what their
//! schemas do not enforce (tickets against section capacities, seat statuses,
//! standing counters and hold quantities; payments against reservations;
//! payments stuck, unrefunded or lost), [`invariants::Liveness`] that the
//! sale worked at all (few failed buyers, paid orders, captured payments
//! matching what buyers saw, the active-user threshold held), and
//! [`fairness::verify_draw`] the pre-queue draw against its published seed;
//! [`report`] writes a terminal summary, `report.json` and `report.html`.
//! Any violation makes the exit status 3.

pub mod board;
pub mod buyer;
pub mod fairness;
pub mod gate;
pub mod invariants;
pub mod limits;
pub mod report;
pub mod run;
pub mod seat_map;
pub mod service_times;
pub mod stats;
pub mod stripe_relay;
