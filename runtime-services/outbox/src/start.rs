//! What every service with an outbox does at start, written once for the
//! ticket and payment services: the database and Kafka settings as flags
//! with environment fallbacks, the pool with its migrations and the outbox
//! tables, and the relay with the topics it publishes to.

use std::time::Duration;

use prometheus_client::registry::Registry;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::kafka::{self, ConnectionError, SetupError};
use crate::relay::{Relay, RelayError, RelaySettings};

/// How long a request waits for a pooled connection before it fails: a
/// saturated pool shows up as an error the caller can retry, not a hang.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The database and the broker, as `#[command(flatten)]` into a service's
/// config (the operator sets the variables from its Secret references).
#[derive(Clone, clap::Args)]
pub struct OutboxArgs {
    #[arg(long, env = "URR_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    #[arg(long, env = "URR_DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
    /// Brokers, optionally with SASL/TLS settings (`urr_outbox::kafka::Connection`).
    #[arg(long, env = "URR_KAFKA_BROKERS", hide_env_values = true)]
    pub kafka_brokers: String,
    /// Partitions of the topics this service creates when they are missing.
    #[arg(long, env = "URR_KAFKA_PARTITIONS", default_value_t = 3)]
    pub kafka_partitions: i32,
    #[arg(long, env = "URR_KAFKA_REPLICATION", default_value_t = 1)]
    pub kafka_replication: i32,
}

/// By hand: the database URL carries a password and the broker string may
/// carry SASL credentials.
impl std::fmt::Debug for OutboxArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxArgs")
            .field("database_max_connections", &self.database_max_connections)
            .field("kafka_partitions", &self.kafka_partitions)
            .finish_non_exhaustive()
    }
}

/// Why a service with an outbox could not start; each step keeps its source.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] sqlx::Error),
    #[error("cannot create Kafka topics: {0}")]
    Topics(#[source] SetupError),
    #[error(transparent)]
    Brokers(ConnectionError),
    #[error("cannot start the outbox relay: {0}")]
    Relay(#[source] RelayError),
}

impl OutboxArgs {
    /// The pool, after the service's own migrations and the outbox and
    /// inbox tables (see [`crate::prepare_database`]).
    pub async fn database(&self, migrator: &Migrator) -> Result<PgPool, StartError> {
        let pool = PgPoolOptions::new()
            .max_connections(self.database_max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&self.database_url)
            .await
            .map_err(StartError::Connect)?;
        crate::prepare_database(&pool, migrator)
            .await
            .map_err(StartError::Migrate)?;
        Ok(pool)
    }

    /// The relay publishing `pool`'s outbox, once `topics` exist (created
    /// when missing), its metrics in `registry`.
    pub async fn relay(
        &self,
        pool: &PgPool,
        topics: &[&str],
        registry: &mut Registry,
    ) -> Result<Relay, StartError> {
        kafka::ensure_topics(
            &self.kafka_brokers,
            topics,
            self.kafka_partitions,
            self.kafka_replication,
        )
        .await
        .map_err(StartError::Topics)?;
        let producer = kafka::producer_config(&self.kafka_brokers).map_err(StartError::Brokers)?;
        Relay::new(pool.clone(), producer, RelaySettings::default(), registry)
            .map_err(StartError::Relay)
    }
}
