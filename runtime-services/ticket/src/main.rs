#![forbid(unsafe_code)]
//! `urr-ticket`: thin entry point; everything lives in the library.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use urr_service_common::contracts::{PAYMENT_EVENTS, RESERVATION_EVENTS, TRANSFER_EVENTS};
use urr_service_common::service::{self, Background, Context, StartError};
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
    service::main("urr-ticket", config.service.log_format, run(config)).await
}

async fn run(config: TicketConfig) -> Result<(), StartError> {
    // Checked first: a bad limit or short key fails before any connection is made.
    let server_settings = config.service.server.settings()?;
    let catalog = Arc::new(
        Catalog::from_json(&config.settings_json()?, &config.service.event)
            .context("bad event settings")?,
    );
    let users = config.service.user_jwt.verifier()?;
    let entry_key = EntryTokenKey::from_env_secret(&config.entry_token_key)?;
    let pool = config.outbox.database(&urr_ticket::MIGRATOR).await?;
    let report = inventory::import(&pool, &catalog)
        .await
        .context("cannot import the seat map")?;
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
        .context("bad Redis URL")?
        .get_connection_manager_with_config(
            // The same response timeout as the queue (see there why not 500 ms).
            redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(Duration::from_secs(3))),
        )
        .await
        .context("cannot connect to Redis")?;
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
        .context("cannot restore seat locks")?;
    let mut metrics = TicketMetrics::new();
    let relay = config
        .outbox
        .relay(
            &pool,
            &[PAYMENT_EVENTS, RESERVATION_EVENTS, TRANSFER_EVENTS],
            &mut metrics.registry,
        )
        .await?;
    let desk = HoldDesk {
        pool,
        locks,
        catalog,
        metrics: Arc::new(metrics),
    };
    let mut background = Background::default();
    let stopped = background.stopped();
    background.extend(
        consumers::spawn(&config.outbox.kafka_brokers, &desk, stopped.clone())
            .context("cannot start the Kafka consumers")?,
    );
    background.push(tokio::spawn(relay.run(stopped.clone())));
    background.push(tokio::spawn(reaper::run(
        desk.clone(),
        Duration::from_millis(config.reaper_interval_ms),
        stopped,
    )));
    let state = AppState::new(desk, users, entry_key, &config.service_token);
    let listen = config.service.listeners();
    service::serve(listen, routers(state), &server_settings, background, || {
        tracing::info!(listen = %config.service.listen, internal_listen = %config.service.server.internal_listen, event = %config.service.event, "urr-ticket serving");
    })
    .await
}
