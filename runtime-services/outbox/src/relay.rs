//! The outbox relay: publishes committed outbox rows to Kafka, in id order,
//! at least once.

use std::time::{Duration, Instant};

use futures::future::join_all;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio::sync::watch;

use crate::NOTIFY_CHANNEL;

/// How the relay batches and waits.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows claimed per round.
    pub batch: i64,
    /// Longest sleep when nothing was notified (a safety net: a lost
    /// notification, or rows left by a relay that died).
    pub idle_poll: Duration,
    /// Wait after a failed round (broker or database down).
    pub failure_backoff: Duration,
    /// Wake on `NOTIFY` (the default). Off, the relay only polls every
    /// `idle_poll`: the baseline the benchmark compares against.
    pub listen: bool,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch: 256,
            idle_poll: Duration::from_millis(500),
            failure_backoff: Duration::from_secs(1),
            listen: true,
        }
    }
}

/// The relay's Prometheus figures, registered as `outbox_*` under the
/// service's own prefix: `urr_ticket_outbox_publish_lag_seconds` and
/// `urr_payment_outbox_publish_lag_seconds` (the service registries carry
/// `urr_<service>`, and a sub-registry's prefix is appended to it).
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    /// Seconds from the row's commit-time timestamp to the broker's ack.
    pub lag_seconds: Histogram,
    pub published: Counter,
    pub failures: Counter,
    /// Rows not yet published, as of the last round.
    pub backlog: Gauge,
}

impl RelayMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            lag_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 18)),
            published: Counter::default(),
            failures: Counter::default(),
            backlog: Gauge::default(),
        };
        let sub = registry.sub_registry_with_prefix("outbox");
        sub.register(
            "publish_lag_seconds",
            "Time from outbox insert to broker acknowledgement",
            metrics.lag_seconds.clone(),
        );
        sub.register(
            "published",
            "Outbox rows published to Kafka",
            metrics.published.clone(),
        );
        sub.register(
            "publish_failures",
            "Outbox rows whose publication failed (retried)",
            metrics.failures.clone(),
        );
        sub.register(
            "backlog",
            "Outbox rows waiting at the last round",
            metrics.backlog.clone(),
        );
        metrics
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Publishes the `outbox` table to Kafka. Several replicas may run one each:
/// rows are claimed with `FOR UPDATE SKIP LOCKED`, so no row is sent by two
/// relays at once (though a crash can still send one twice; consumers dedupe).
pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    settings: RelaySettings,
    metrics: RelayMetrics,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub published: usize,
    pub failed: usize,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        producer_config: ClientConfig,
        settings: RelaySettings,
        registry: &mut Registry,
    ) -> Result<Self, RelayError> {
        Self::with_metrics(pool, producer_config, settings, RelayMetrics::new(registry))
    }

    pub fn with_metrics(
        pool: PgPool,
        producer_config: ClientConfig,
        settings: RelaySettings,
        metrics: RelayMetrics,
    ) -> Result<Self, RelayError> {
        Ok(Self {
            pool,
            producer: producer_config.create()?,
            settings,
            metrics,
        })
    }

    /// Runs until `stop` turns true, then returns after the current round.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut listener = self.listen().await;
        loop {
            if *stop.borrow() {
                return;
            }
            let wait = match self.round().await {
                Ok(round) if round.published as i64 >= self.settings.batch => Duration::ZERO,
                Ok(round) if round.failed > 0 => self.settings.failure_backoff,
                Ok(_) => self.settings.idle_poll,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay round failed; retrying");
                    self.metrics.failures.inc();
                    self.settings.failure_backoff
                }
            };
            if wait.is_zero() {
                continue;
            }
            match listener.as_mut() {
                Some(listener) => tokio::select! {
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                    notified = listener.recv() => {
                        if let Err(error) = notified {
                            tracing::warn!(%error, "outbox notification channel lost; polling");
                        }
                    }
                },
                None => tokio::select! {
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                },
            }
            if listener.is_none() && self.settings.listen {
                listener = self.listen().await;
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        if !self.settings.listen {
            return None;
        }
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for outbox rows; polling instead");
                return None;
            }
        };
        match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for outbox rows; polling instead");
                None
            }
        }
    }

    /// One round: claim up to `batch` unpublished rows, send them, mark the
    /// acknowledged ones published, record the failure on the others.
    pub async fn round(&self) -> Result<Round, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, topic, message_key, payload::text AS payload,
                    EXTRACT(EPOCH FROM (clock_timestamp() - created_at))::float8 AS age
             FROM outbox WHERE published_at IS NULL
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.settings.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            self.metrics.backlog.set(0);
            tx.rollback().await?;
            return Ok(Round::default());
        }
        let started = Instant::now();
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            claimed.push((
                row.try_get::<i64, _>("id")?,
                row.try_get::<String, _>("topic")?,
                row.try_get::<String, _>("message_key")?,
                row.try_get::<String, _>("payload")?,
                row.try_get::<f64, _>("age")?,
            ));
        }
        // Sends are enqueued in id order (join_all polls in order), so per
        // key and partition the broker sees them in outbox order.
        let sends = claimed.iter().map(|(_, topic, key, payload, _)| {
            self.producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
        });
        let results = join_all(sends).await;
        let sent_for = started.elapsed().as_secs_f64();
        let mut published = Vec::new();
        let mut failed = Vec::new();
        for ((id, topic, _, _, age), result) in claimed.iter().zip(results) {
            match result {
                Ok(_) => {
                    published.push(*id);
                    self.metrics.lag_seconds.observe(age + sent_for);
                }
                Err((error, _)) => {
                    tracing::warn!(id, %topic, %error, "outbox publish failed; will retry");
                    failed.push((*id, error.to_string()));
                }
            }
        }
        if !published.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = clock_timestamp(), attempts = attempts + 1 WHERE id = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await?;
        }
        for (id, error) in &failed {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.metrics.published.inc_by(published.len() as u64);
        self.metrics.failures.inc_by(failed.len() as u64);
        let (backlog,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        self.metrics.backlog.set(backlog);
        Ok(Round {
            published: published.len(),
            failed: failed.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_metrics_carry_the_service_prefix_once() {
        let mut registry = Registry::with_prefix("urr_ticket");
        let metrics = RelayMetrics::new(&mut registry);
        metrics.lag_seconds.observe(0.01);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains("urr_ticket_outbox_publish_lag_seconds_bucket"),
            "{text}"
        );
        assert!(!text.contains("urr_outbox"), "{text}");
    }
}
