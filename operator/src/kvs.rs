//! The one writer of the CloudFront KeyValueStore (DESIGN.md, Edge config in
//! KVS). The store has a whole-store ETag and every write must name the ETag
//! it read (`IfMatch`), so concurrent writers serialize through conflicts:
//!
//! * changes are batched into `UpdateKeys` calls (50 keys per call, the
//!   service's limit);
//! * [`KvsWriter::write_if_match`] is the read-modify-write primitive: the
//!   caller describes the store first, reads what it needs under that ETag,
//!   and writes with it; a stale ETag comes back as [`KvsError::Conflict`] and
//!   the caller starts again from the read (`waiting_room::publish`). An ETag
//!   fetched right before the write would not cover the earlier reads, and two
//!   rooms reconciled at once dropped each other from the shared root shard;
//! * [`KvsWriter::apply`] is a blind write for keys that only its caller
//!   writes (tests, benches): a stale ETag is retried after a fresh describe;
//! * throttling and transient faults (429, 5xx, timeouts) are retried with
//!   exponential backoff and jitter, a bounded number of times;
//! * anything else (access denied, validation, not found) fails at once with
//!   the service's message, for the WaitingRoom's `EdgeSynced` condition.
//!
//! Only the leading operator replica writes, so conflicts come from a former
//! leader's last write or from people, not from a steady fight.

use std::time::Duration;

use aws_sdk_cloudfrontkeyvaluestore::Client;
use aws_sdk_cloudfrontkeyvaluestore::config::endpoint::{
    Endpoint, EndpointFuture, Params, ResolveEndpoint,
};
use aws_sdk_cloudfrontkeyvaluestore::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudfrontkeyvaluestore::types::{DeleteKeyRequestListItem, PutKeyRequestListItem};

/// Keys per `UpdateKeys` call.
pub const MAX_KEYS_PER_UPDATE: usize = 50;

/// One change to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvsChange {
    Put { key: String, value: String },
    Delete { key: String },
}

#[derive(Debug, thiserror::Error)]
pub enum KvsError {
    #[error("the KeyValueStore is unreachable after {attempts} attempts: {message}")]
    Unreachable { attempts: u32, message: String },
    #[error("the KeyValueStore refused the write ({code}): {message}")]
    Refused { code: String, message: String },
    #[error(
        "still conflicting after {attempts} attempts (another writer keeps changing the store)"
    )]
    Contended { attempts: u32 },
    /// The store changed since the ETag the write named: read again.
    #[error("the KeyValueStore changed since it was read (stale ETag)")]
    Conflict,
}

/// Always this URL: the emulator, or a VPC endpoint. Without it the SDK's
/// rules put the account id of the ARN into the host name.
#[derive(Debug, Clone)]
struct FixedEndpoint(String);

impl ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(&'a self, _params: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
    }
}

/// Writes one store.
#[derive(Debug, Clone)]
pub struct KvsWriter {
    client: Client,
    arn: String,
    max_attempts: u32,
    base_backoff: Duration,
}

enum Failure {
    Conflict,
    Transient(String),
    Fatal(String, String),
}

fn classify<E, R>(error: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match error {
        SdkError::ServiceError(service) => {
            let meta = service.err();
            let code = meta.code().unwrap_or("Unknown").to_owned();
            let message = meta.message().unwrap_or_default().to_owned();
            match code.as_str() {
                "ConflictException" | "PreconditionFailed" => Failure::Conflict,
                "ThrottlingException" | "InternalServerException" | "ServiceUnavailable" => {
                    Failure::Transient(format!("{code}: {message}"))
                }
                _ => Failure::Fatal(code, message),
            }
        }
        SdkError::ResponseError(_) | SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            Failure::Transient(format!("{error:?}").chars().take(300).collect())
        }
        other => Failure::Fatal(
            "Client".to_owned(),
            format!("{other:?}").chars().take(300).collect(),
        ),
    }
}

impl KvsWriter {
    /// A writer for `arn`, through `endpoint` when given (the emulator in
    /// tests), with credentials and region from the environment (IRSA in a
    /// cluster).
    pub async fn new(arn: impl Into<String>, endpoint: Option<&str>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let mut builder = aws_sdk_cloudfrontkeyvaluestore::config::Builder::from(&shared);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_resolver(FixedEndpoint(endpoint.to_owned()));
        }
        Self {
            client: Client::from_conf(builder.build()),
            arn: arn.into(),
            max_attempts: 6,
            base_backoff: Duration::from_millis(100),
        }
    }

    /// Fewer, faster attempts (tests of an unreachable store).
    pub fn with_retries(mut self, max_attempts: u32, base_backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.base_backoff = base_backoff;
        self
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The store's current ETag.
    pub async fn etag(&self) -> Result<String, KvsError> {
        self.retrying(|| async {
            self.client
                .describe_key_value_store()
                .kvs_arn(&self.arn)
                .send()
                .await
                .map(|out| out.e_tag().to_owned())
                .map_err(|e| classify(&e))
        })
        .await
    }

    /// Reads one key; `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<String>, KvsError> {
        self.retrying(|| async {
            match self
                .client
                .get_key()
                .kvs_arn(&self.arn)
                .key(key)
                .send()
                .await
            {
                Ok(out) => Ok(Some(out.value().to_owned())),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(error) => Err(classify(&error)),
            }
        })
        .await
    }

    /// Applies `changes` in batches, whatever the store holds now (a blind
    /// write: only for keys no one else writes); returns the store's ETag
    /// after the last batch.
    pub async fn apply(&self, changes: &[KvsChange]) -> Result<String, KvsError> {
        let mut conflicts = 0;
        loop {
            let etag = self.etag().await?;
            match self.write_if_match(&etag, changes).await {
                Err(KvsError::Conflict) => {
                    conflicts += 1;
                    if conflicts >= self.max_attempts {
                        return Err(KvsError::Contended {
                            attempts: conflicts,
                        });
                    }
                    tracing::debug!(conflicts, "stale ETag; describing the store again");
                    conflict_pause(conflicts).await;
                }
                other => return other,
            }
        }
    }

    /// Writes `changes` only if the store is still at `etag` (the ETag the
    /// caller read before reading the keys its changes depend on): batches
    /// are chained, each naming the ETag the previous one returned. A store
    /// that moved meanwhile is [`KvsError::Conflict`]; the caller reads again.
    pub async fn write_if_match(
        &self,
        etag: &str,
        changes: &[KvsChange],
    ) -> Result<String, KvsError> {
        let mut etag = etag.to_owned();
        for batch in changes.chunks(MAX_KEYS_PER_UPDATE) {
            etag = self.update(&etag, batch).await?;
        }
        Ok(etag)
    }

    async fn update(&self, etag: &str, batch: &[KvsChange]) -> Result<String, KvsError> {
        let refused = |e: aws_sdk_cloudfrontkeyvaluestore::error::BuildError| KvsError::Refused {
            code: "Build".into(),
            message: e.to_string(),
        };
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        for change in batch {
            match change {
                KvsChange::Put { key, value } => puts.push(
                    PutKeyRequestListItem::builder()
                        .key(key)
                        .value(value)
                        .build()
                        .map_err(refused)?,
                ),
                KvsChange::Delete { key } => deletes.push(
                    DeleteKeyRequestListItem::builder()
                        .key(key)
                        .build()
                        .map_err(refused)?,
                ),
            }
        }
        self.retrying(|| async {
            self.client
                .update_keys()
                .kvs_arn(&self.arn)
                .if_match(etag)
                .set_puts(Some(puts.clone()).filter(|p| !p.is_empty()))
                .set_deletes(Some(deletes.clone()).filter(|d| !d.is_empty()))
                .send()
                .await
                .map(|out| out.e_tag().to_owned())
                .map_err(|e| classify(&e))
        })
        .await
    }

    /// Runs `call` until it succeeds, retrying transient failures with
    /// backoff; a conflict is handed back to the caller as `Conflict` (it
    /// must read again, which only the caller can do).
    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T, KvsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await {
                Ok(value) => return Ok(value),
                Err(Failure::Conflict) => return Err(KvsError::Conflict),
                Err(Failure::Fatal(code, message)) => {
                    return Err(KvsError::Refused { code, message });
                }
                Err(Failure::Transient(message)) => {
                    if attempt >= self.max_attempts {
                        return Err(KvsError::Unreachable {
                            attempts: attempt,
                            message,
                        });
                    }
                    let exponential = self.base_backoff.saturating_mul(1 << (attempt - 1).min(6));
                    // Up to half as much again, so writers that failed together do not retry together.
                    let jitter = exponential.mul_f64(rand::random::<f64>() / 2.0);
                    tokio::time::sleep(exponential + jitter).await;
                }
            }
        }
    }
}

/// A short random pause after the `conflicts`-th conflict in a row, so two
/// writers that met do not meet again in lockstep on the next round.
pub async fn conflict_pause(conflicts: u32) {
    let ceiling_ms = 20.0 * f64::from(conflicts.min(5));
    tokio::time::sleep(Duration::from_millis(
        (rand::random::<f64>() * ceiling_ms) as u64,
    ))
    .await;
}
