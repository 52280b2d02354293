#![forbid(unsafe_code)]
//! `urr-ticket`: thin entry point; everything lives in the library.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use urr_outbox::{Relay, RelaySettings};
use urr_service_common::contracts::{PAYMENT_EVENTS, RESERVATION_EVENTS, TRANSFER_EVENTS};
use urr_service_common::service::{self, Background, Listen, StartError};
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_ticket::config::TicketConfig;
use urr_ticket::holds::HoldDesk;
use urr_ticket::locks::SeatLocks;
use urr_ticket::settings::Catalog;
use urr_ticket::telemetry::TicketMetrics;
use urr_ticket::{AppState, consumers, inventory, reaper, routers};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = TicketConfig::parse();
    service::main("urr-ticket", config.log_format, run(config)).await
}

async fn run(config: TicketConfig) -> Result<(), StartError> {
    // Checked first: a bad limit or short key fails before any connection is made.
    let server_settings = config.server.settings()?;
    let catalog = Arc::new(
        Catalog::from_json(&config.settings_json()?, &config.event).map_err(|e| e.to_string())?,
    );
    let users = config.user_jwt.verifier()?;
    let entry_key = EntryTokenKey::from_env_secret(&config.entry_token_key)?;
    let pool = PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&config.database_url)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    urr_ticket::prepare_database(&pool)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    let report = inventory::import(&pool, &catalog)
        .await
        .map_err(|e| format!("cannot import the seat map: {e}"))?;
    for (section, requested, kept) in &report.capacity_floors {
        tracing::warn!(
            %section,
            requested,
            kept,
            "the seat map shrinks a standing section below what is already held or sold; it keeps {kept} places"
        );
    }
    tracing::info!(
        changed = report.changed,
        added = report.seats_added,
        retired = report.seats_retired,
        "seat map imported"
    );
    let redis = redis::Client::open(config.redis_url.as_str())
        .map_err(|e| format!("bad Redis URL: {e}"))?
        .get_connection_manager_with_config(
            // The same response timeout as the queue (see there why not 500 ms).
            redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(Duration::from_secs(3))),
        )
        .await
        .map_err(|e| format!("cannot connect to Redis: {e}"))?;
    let locks = SeatLocks::new(redis, catalog.event());
    // A changed seat map may have moved a standing capacity: its Redis
    // counter follows the database then, not the other replicas' value.
    let standing_counters = if report.changed {
        inventory::StandingCounters::FromDatabase
    } else {
        inventory::StandingCounters::KeepExisting
    };
    inventory::restore_locks(&pool, &locks, catalog.event(), standing_counters)
        .await
        .map_err(|e| format!("cannot restore seat locks: {e}"))?;
    urr_outbox::kafka::ensure_topics(
        &config.kafka_brokers,
        &[PAYMENT_EVENTS, RESERVATION_EVENTS, TRANSFER_EVENTS],
        config.kafka_partitions,
        config.kafka_replication,
    )
    .await
    .map_err(|e| format!("cannot create Kafka topics: {e}"))?;

    let mut metrics = TicketMetrics::new();
    let relay = Relay::new(
        pool.clone(),
        urr_outbox::kafka::producer_config(&config.kafka_brokers).map_err(|e| e.to_string())?,
        RelaySettings::default(),
        &mut metrics.registry,
    )
    .map_err(|e| format!("cannot start the outbox relay: {e}"))?;
    let desk = HoldDesk {
        pool,
        locks,
        catalog,
        metrics: Arc::new(metrics),
    };
    let mut background = Background::default();
    let stopped = background.stopped();
    background.extend(
        consumers::spawn(&config.kafka_brokers, &desk, stopped.clone())
            .map_err(|e| format!("cannot start the Kafka consumers: {e}"))?,
    );
    background.push(tokio::spawn(relay.run(stopped.clone())));
    background.push(tokio::spawn(reaper::run(
        desk.clone(),
        Duration::from_millis(config.reaper_interval_ms),
        stopped,
    )));
    let state = AppState::new(desk, users, entry_key, &config.service_token);
    let listen = Listen {
        public: config.listen,
        internal: config.server.internal_listen,
    };
    service::serve(listen, routers(state), &server_settings, background, || {
        tracing::info!(listen = %config.listen, internal_listen = %config.server.internal_listen, event = %config.event, "urr-ticket serving");
    })
    .await
}
