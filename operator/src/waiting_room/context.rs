//! What every WaitingRoom reconcile shares: the client, the stats source and
//! the clock, and the caches of Redis connections and KeyValueStore writers
//! (one per URL or store, opened once), with the Secret and store lookups
//! that fill them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;
use redis::aio::ConnectionManager;
use urr_crds::{Event, SecretKeyRef};

use super::Error;
use crate::kvs::KvsWriter;
use crate::stats::StatsSource;

/// Shared by every WaitingRoom reconcile.
pub struct RoomContext {
    pub client: Client,
    pub stats: Arc<dyn StatsSource>,
    pub clock: Arc<dyn crate::controller::Clock>,
    /// Endpoint of the KVS and CloudFront APIs (the emulator); `None` for AWS.
    pub aws_endpoint: Option<String>,
    redis: tokio::sync::Mutex<HashMap<String, ConnectionManager>>,
    writers: tokio::sync::Mutex<HashMap<String, KvsWriter>>,
    /// Publishes the Kubernetes Events of room controls; `None` in tests
    /// that do not look at them.
    pub recorder: Option<kube::runtime::events::Recorder>,
    /// Since when each room's queue has been drained (`activation::decide`'s
    /// memory between reconciles).
    pub(super) drained: Mutex<HashMap<(String, String), Timestamp>>,
}

urr_service_common::debug_fields!(RoomContext { aws_endpoint });

impl RoomContext {
    pub fn new(
        client: Client,
        stats: Arc<dyn StatsSource>,
        clock: Arc<dyn crate::controller::Clock>,
        aws_endpoint: Option<String>,
    ) -> Self {
        Self {
            client,
            stats,
            clock,
            aws_endpoint,
            redis: Default::default(),
            writers: Default::default(),
            recorder: None,
            drained: Mutex::default(),
        }
    }

    /// Publishes the room's Events through `recorder`.
    pub fn with_recorder(mut self, recorder: kube::runtime::events::Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    pub(super) async fn secret(
        &self,
        namespace: &str,
        reference: &SecretKeyRef,
    ) -> Result<Vec<u8>, Error> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = secrets
            .get(&reference.name)
            .await
            .map_err(|source| Error::Kube {
                what: format!("Secret {}", reference.name),
                source,
            })?;
        secret
            .data
            .and_then(|mut data| data.remove(&reference.key))
            .map(|bytes| bytes.0)
            .ok_or_else(|| Error::SecretKey {
                name: reference.name.clone(),
                key: reference.key.clone(),
            })
    }

    async fn redis(&self, url: &str) -> Result<ConnectionManager, Error> {
        let mut cache = self.redis.lock().await;
        if let Some(conn) = cache.get(url) {
            return Ok(conn.clone());
        }
        let conn = redis::Client::open(url)?.get_connection_manager().await?;
        cache.insert(url.to_owned(), conn.clone());
        Ok(conn)
    }

    pub(super) async fn writer(
        &self,
        edge: &urr_crds::waiting_room::Edge,
    ) -> Result<KvsWriter, Error> {
        let id = edge
            .key_value_store_arn
            .clone()
            .or_else(|| edge.key_value_store_name.clone())
            .unwrap_or_default();
        let mut cache = self.writers.lock().await;
        if let Some(writer) = cache.get(&id) {
            return Ok(writer.clone());
        }
        let arn = match (&edge.key_value_store_arn, &edge.key_value_store_name) {
            (Some(arn), _) => arn.clone(),
            (None, Some(name)) => self.resolve_store(name).await?,
            (None, None) => {
                return Err(Error::ResolveStore {
                    name: String::new(),
                    message: "no store named".into(),
                });
            }
        };
        let writer = KvsWriter::new(arn, self.aws_endpoint.as_deref()).await;
        cache.insert(id, writer.clone());
        Ok(writer)
    }

    /// A store given by name is resolved to its ARN once, through CloudFront's control plane.
    async fn resolve_store(&self, name: &str) -> Result<String, Error> {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let mut config = aws_sdk_cloudfront::config::Builder::from(&shared);
        if let Some(endpoint) = &self.aws_endpoint {
            config = config.endpoint_url(endpoint);
        }
        let client = aws_sdk_cloudfront::Client::from_conf(config.build());
        let described = client
            .describe_key_value_store()
            .name(name)
            .send()
            .await
            .map_err(|e| Error::ResolveStore {
                name: name.to_owned(),
                message: format!("{e:?}").chars().take(300).collect(),
            })?;
        described
            .key_value_store()
            .map(|store| store.arn().to_owned())
            .ok_or_else(|| Error::ResolveStore {
                name: name.to_owned(),
                message: "no store in the answer".into(),
            })
    }
}

/// The Redis the Event's queue service uses (its URL from the Secret the
/// Event names), or `None` without an Event.
pub(super) async fn queue_redis(
    ctx: &RoomContext,
    namespace: &str,
    event: Option<&Event>,
) -> Result<Option<ConnectionManager>, Error> {
    let Some(redis_ref) =
        event.and_then(|e| e.spec.services.queue.connections.redis_url_ref.as_ref())
    else {
        return Ok(None);
    };
    let url = String::from_utf8_lossy(&ctx.secret(namespace, redis_ref).await?)
        .trim()
        .to_owned();
    Ok(Some(ctx.redis(&url).await?))
}
