#![forbid(unsafe_code)]
//! `urr-queue`: thin entry point; everything lives in the library.

use std::sync::Arc;

use clap::Parser;
use urr_queue::admitter::{self, Admitter, AdmitterSettings};
use urr_queue::config::QueueConfig;
use urr_queue::inventory::TicketInventory;
use urr_queue::pass::PassKeys;
use urr_queue::store::{self, QueueStore};
use urr_queue::telemetry::QueueMetrics;
use urr_queue::{AppState, routers};
use urr_service_common::service::{self, Background, Context, StartError};
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::vwr::VwrKey;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = QueueConfig::parse();
    service::main("urr-queue", config.service.log_format, run(config)).await
}

async fn run(config: QueueConfig) -> Result<(), StartError> {
    // Checked first: a bad limit or short key fails before any connection is made.
    let server_settings = config.service.server.settings()?;
    let users = config.service.user_jwt.verifier()?;
    let entry_key = EntryTokenKey::from_env_secret(&config.entry_token_key)?;
    let pass_keys = match &config.vwr_signing_key {
        Some(secret) => {
            let current = VwrKey::from_env_secret(config.vwr_key_id.clone(), secret)?;
            let previous = match (
                &config.vwr_previous_key_id,
                &config.vwr_previous_signing_key,
            ) {
                (Some(id), Some(secret)) => Some(VwrKey::from_env_secret(id.clone(), secret)?),
                _ => None,
            };
            PassKeys::new(current, previous)
        }
        // An Event without an edge-gated WaitingRoom: no tier 1.
        None => PassKeys::none(),
    };
    let store = QueueStore::connect(&config.redis_url, &config.service.event)
        .await
        .context("cannot connect to Redis")?
        .with_number_blocks(config.number_blocks());
    let metrics = Arc::new(QueueMetrics::new());
    let state = AppState {
        store: store.clone(),
        event: config.service.event.clone(),
        room_name: config.room_name().to_owned(),
        room_id: config.room_id(),
        users,
        entry_key,
        pass_keys,
        vwr_token_ttl_seconds: config.vwr_token_ttl_seconds,
        cookie_secure: config.cookie_secure,
        number_limit_per_ip: config.number_limit_per_ip,
        join_limit_per_ip: config.join_limit_per_ip,
        join_limit_per_user: config.join_limit_per_user,
        client_address: config.client_address(),
        metrics: metrics.clone(),
        drawn_members: Arc::default(),
        page: Arc::default(),
        snapshot: Arc::new(urr_queue::snapshot::SnapshotCache::new(config.tick())),
    };
    let mut background = Background::default();
    background.push(tokio::spawn(store::flush_arrivals_until_stopped(
        store.clone(),
        std::time::Duration::from_secs(1),
        background.stopped(),
    )));
    if config.admitter {
        let settings = AdmitterSettings {
            instance: uuid::Uuid::new_v4().to_string(),
            inventory: config.ticket_url.as_deref().map(TicketInventory::new),
            tick_ms: config.tick().as_millis() as u64,
            lease_ms: config.lease_ms(),
            heartbeat_timeout_ms: config.heartbeat_timeout_seconds * 1000,
        };
        background.push(tokio::spawn(admitter::run(
            Admitter::new(store, settings, Some(metrics)),
            background.stopped(),
        )));
    }
    let listen = config.service.listeners();
    // Every request carries ConnectInfo<SocketAddr> (the join limit per IP).
    service::serve(listen, routers(state), &server_settings, background, || {
        tracing::info!(listen = %config.service.listen, internal_listen = %config.service.server.internal_listen, event = %config.service.event, room = %config.room_name(), "urr-queue serving");
    })
    .await
}
