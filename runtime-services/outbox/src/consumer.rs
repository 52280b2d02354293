//! A Kafka consumer loop with the commit discipline exactly-once effects
//! need: the offset is committed only after the handler's database
//! transaction (with its [`crate::inbox::claim`]) has committed.

use std::future::Future;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use tokio::sync::watch;

/// Why a message was not handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying (database down, a dependency timed out): the same
    /// message is handled again after a backoff, its offset not committed.
    #[error("retryable: {0}")]
    Retry(String),
    /// Can never succeed (unknown schema, malformed JSON): logged, counted
    /// and skipped, so one bad message cannot stop the partition.
    #[error("poison: {0}")]
    Poison(String),
}

/// Handles one message's payload.
pub trait Handler: Send + Sync {
    fn handle(&self, payload: &[u8]) -> impl Future<Output = Result<(), HandleError>> + Send;
    /// Called for each skipped poison message (for a metric).
    fn poisoned(&self, _reason: &str) {}
}

/// Consumes until `stop` turns true. The consumer is dropped before the
/// function returns (a consumer dropped later, from another task, can hang
/// on close).
pub async fn run<H: Handler>(
    consumer: StreamConsumer,
    handler: H,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    'messages: loop {
        if *stop.borrow() {
            break;
        }
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "kafka receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let payload = message.payload().unwrap_or_default();
        loop {
            match handler.handle(payload).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    break;
                }
                Err(HandleError::Poison(reason)) => {
                    tracing::error!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        %reason,
                        "skipping a message that can never be handled"
                    );
                    handler.poisoned(&reason);
                    break;
                }
                Err(HandleError::Retry(reason)) => {
                    tracing::warn!(offset = message.offset(), %reason, "handling failed; retrying");
                    tokio::select! {
                        _ = stop.changed() => break 'messages,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        if let Err(error) = consumer.commit_message(&message, CommitMode::Async) {
            // Not fatal: the message is redelivered and the inbox dedupes it.
            tracing::warn!(%error, "offset commit failed");
        }
    }
    drop(consumer);
}
