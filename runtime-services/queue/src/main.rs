#![forbid(unsafe_code)]
//! `urr-queue`: thin entry point; everything lives in the library.

use std::sync::Arc;

use clap::Parser;
use urr_queue::admitter::{self, Admitter, AdmitterSettings};
use urr_queue::config::QueueConfig;
use urr_queue::pass::PassKeys;
use urr_queue::store::QueueStore;
use urr_queue::telemetry::QueueMetrics;
use urr_queue::{AppState, routers};
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::vwr::VwrKey;
use urr_service_common::{server, shutdown, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = QueueConfig::parse();
    telemetry::init(config.log_format);
    urr_service_common::install_tls_provider();
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "urr-queue failed");
            eprintln!("urr-queue: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: QueueConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Checked first: a bad limit or short key fails before any connection is made.
    let server_settings = config.server.settings()?;
    let users = config.user_jwt.verifier()?;
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
    let store = QueueStore::connect(&config.redis_url, &config.event)
        .await
        .map_err(|e| format!("cannot connect to Redis: {e}"))?;
    let metrics = Arc::new(QueueMetrics::new());
    let state = AppState {
        store: store.clone(),
        event: config.event.clone(),
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
        snapshot: Arc::new(urr_queue::snapshot::SnapshotCache::new(config.tick())),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let admitter_task = config.admitter.then(|| {
        let settings = AdmitterSettings {
            instance: uuid::Uuid::new_v4().to_string(),
            tick_ms: config.tick().as_millis() as u64,
            lease_ms: config.lease_ms(),
            heartbeat_timeout_ms: config.heartbeat_timeout_seconds * 1000,
        };
        tokio::spawn(admitter::run(
            Admitter::new(store, settings, Some(metrics)),
            stopped,
        ))
    });
    let listener = server::bind(config.listen).await?;
    let internal = server::bind(config.server.internal_listen).await?;
    tracing::info!(listen = %config.listen, internal_listen = %config.server.internal_listen, event = %config.event, room = %config.room_name(), "urr-queue serving");
    // Every request carries ConnectInfo<SocketAddr> (the join limit per IP).
    server::serve_split(
        listener,
        internal,
        routers(state),
        &server_settings,
        shutdown::signal(),
    )
    .await;
    let _ = stop.send(true);
    if let Some(task) = admitter_task {
        let _ = task.await;
    }
    Ok(())
}
