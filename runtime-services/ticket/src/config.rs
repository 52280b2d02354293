//! Settings, from flags or the environment the operator's ConfigMap and
//! Secret references provide. Secret values are never echoed in `--help`.

use std::net::SocketAddr;

use clap::Parser;

#[derive(Clone, Parser)]
#[command(name = "urr-ticket", about = "URR ticket service", version)]
pub struct TicketConfig {
    #[arg(long, env = "URR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[arg(long, env = "URR_EVENT_ID")]
    pub event: String,
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
    #[arg(long, env = "URR_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    #[arg(long, env = "URR_DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
    #[arg(long, env = "URR_KAFKA_BROKERS")]
    pub kafka_brokers: String,
    /// Partitions of the topics this service creates when they are missing.
    #[arg(long, env = "URR_KAFKA_PARTITIONS", default_value_t = 3)]
    pub kafka_partitions: i32,
    #[arg(long, env = "URR_KAFKA_REPLICATION", default_value_t = 1)]
    pub kafka_replication: i32,
    #[command(flatten)]
    pub user_jwt: urr_service_common::tokens::user::UserJwtArgs,
    /// Header-read and request timeouts, body and connection limits, origin check.
    #[command(flatten)]
    pub server: urr_service_common::server::ServerArgs,
    #[arg(long, env = "URR_ENTRY_TOKEN_KEY", hide_env_values = true)]
    pub entry_token_key: String,
    /// Bearer token of the internal API (the payment service has the same).
    #[arg(long, env = "URR_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: String,
    #[arg(long, env = "URR_REAPER_INTERVAL_MS", default_value_t = 1000)]
    pub reaper_interval_ms: u64,
    #[arg(long, env = "URR_LOG_FORMAT", default_value = "json")]
    pub log_format: urr_service_common::telemetry::LogFormat,
}

/// By hand: the struct holds secrets (database and Redis URLs with their
/// passwords, signing keys), and a stray `{config:?}` must not print them.
impl std::fmt::Debug for TicketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketConfig")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

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
