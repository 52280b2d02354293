//! Settings, from flags or the environment the operator's ConfigMap and
//! Secret references provide. Secret values are never echoed in `--help`.

use clap::Parser;

#[derive(Clone, Parser)]
#[command(name = "urr-ticket", about = "URR ticket service", version)]
pub struct TicketConfig {
    /// Listen address, Event, user JWTs, server limits, log format.
    #[command(flatten)]
    pub service: urr_service_common::service::ServiceArgs,
    /// The event's settings JSON (name, sale window, limits, seat map), as
    /// the operator renders it.
    #[arg(
        long,
        env = "URR_EVENT_SETTINGS",
        conflicts_with = "event_settings_file"
    )]
    pub event_settings: Option<String>,
    /// The same, from a file.
    #[arg(long, env = "URR_EVENT_SETTINGS_FILE")]
    pub event_settings_file: Option<std::path::PathBuf>,
    #[arg(long, env = "URR_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    /// PostgreSQL and Kafka: the outbox and the inbox.
    #[command(flatten)]
    pub outbox: urr_outbox::OutboxArgs,
    #[arg(long, env = "URR_ENTRY_TOKEN_KEY", hide_env_values = true)]
    pub entry_token_key: String,
    /// Bearer token of the internal API (the payment service has the same).
    #[arg(long, env = "URR_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: String,
    #[arg(long, env = "URR_REAPER_INTERVAL_MS", default_value_t = 1000)]
    pub reaper_interval_ms: u64,
}

// Only the service's listen address and Event show: the struct holds
// secrets (database and Redis URLs, signing keys).
urr_service_common::debug_fields!(TicketConfig { service });

impl TicketConfig {
    /// The settings JSON, from the variable or the file.
    pub fn settings_json(&self) -> Result<String, SettingsSourceError> {
        match (&self.event_settings, &self.event_settings_file) {
            (Some(json), _) => Ok(json.clone()),
            (None, Some(path)) => {
                std::fs::read_to_string(path).map_err(|source| SettingsSourceError::Read {
                    path: path.clone(),
                    source,
                })
            }
            (None, None) => Err(SettingsSourceError::Missing),
        }
    }
}

/// Why the Event's settings could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SettingsSourceError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("set URR_EVENT_SETTINGS (or URR_EVENT_SETTINGS_FILE)")]
    Missing,
}
