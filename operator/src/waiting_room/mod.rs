//! The WaitingRoom controller, a pipeline per reconcile (with a finalizer):
//!
//! 1. **validate** the spec (an invalid one gets `Ready=False`, `InvalidSpec`);
//! 2. **resolve** `eventRef` (missing: `EventFound=False`, retried with backoff);
//! 3. **decide** activation ([`activation`]) from the mode, the time and the
//!    queue's load;
//! 4. **write** the admission policy and the tier-1 serving parameters to the
//!    Redis hashes the queue service reads every tick (Redis URL from the
//!    Secret the Event's queue service uses);
//! 5. **publish** the room's edge entry, the index shards and its signing
//!    keys to the CloudFront KeyValueStore ([`publish`]: read under the
//!    store's ETag, write with `IfMatch`, from the read again on a conflict);
//!    a protected prefix overlapping another room's (`PathConflict`) or a
//!    signing key under 32 bytes (`WeakSigningKey`) is not published;
//! 6. **status**: active, `enforceFrom`, load figures, edge sync, conditions.
//!
//! Deleting a WaitingRoom removes its keys and its Redis policy first (the
//! finalizer); if the store is unreachable, deletion waits and says so. A room
//! that is gone from the edge lets everyone through: the gate fails open.

pub mod activation;
mod edge_step;
pub mod keys;
pub mod publish;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Client, ResourceExt};
use redis::aio::ConnectionManager;
use serde_json::json;
use urr_crds::conditions::{self, Status};
use urr_crds::validation::Validate;
use urr_crds::waiting_room::{WaitingRoomSpec, WaitingRoomStatus};
use urr_crds::{Event, EventSpec, SecretKeyRef, WaitingRoom};
use urr_service_common::policy::{self, Policy};
use urr_service_common::serving::ServingParams;

use crate::children::FIELD_MANAGER;
use crate::edge::{self, EdgeEntry};
use crate::kvs::{KvsError, KvsWriter};
use crate::stats::StatsSource;
use activation::Activation;
use publish::Publication;

pub const FINALIZER: &str = "urr.dev/waiting-room";
/// Retry of a room whose Event is missing or whose edge write failed.
pub const RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the WaitingRoom has no namespace")]
    MissingNamespace,
    #[error("reading {what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("Secret {name} has no key {key}")]
    SecretKey { name: String, key: String },
    #[error("Redis at the queue's URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("KeyValueStore: {0}")]
    Kvs(#[from] KvsError),
    #[error("{0}")]
    Edge(#[from] edge::EdgeError),
    #[error("resolving the KeyValueStore named {name}: {message}")]
    ResolveStore { name: String, message: String },
    /// The finalizer's own failure, or the apply or cleanup step's inside
    /// it, with its source chain kept (boxed: the type nests `Error`).
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

/// Shared by every WaitingRoom reconcile.
pub struct RoomContext {
    pub client: Client,
    pub stats: Arc<dyn StatsSource>,
    pub clock: Arc<dyn crate::controller::Clock>,
    /// Endpoint of the KVS and CloudFront APIs (the emulator); `None` for AWS.
    pub aws_endpoint: Option<String>,
    redis: tokio::sync::Mutex<HashMap<String, ConnectionManager>>,
    writers: tokio::sync::Mutex<HashMap<String, KvsWriter>>,
    drained: Mutex<HashMap<(String, String), Timestamp>>,
}

impl std::fmt::Debug for RoomContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomContext")
            .field("aws_endpoint", &self.aws_endpoint)
            .finish_non_exhaustive()
    }
}

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
            drained: Mutex::default(),
        }
    }

    async fn secret(&self, namespace: &str, reference: &SecretKeyRef) -> Result<Vec<u8>, Error> {
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

    async fn writer(&self, edge: &urr_crds::waiting_room::Edge) -> Result<KvsWriter, Error> {
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

/// The policy the queue service reads, from the room and its Event.
pub fn policy_for(room: &WaitingRoomSpec, event: &EventSpec, activation: &Activation) -> Policy {
    let open = event.sales_open_at.0.as_second();
    Policy {
        active: activation.active,
        users_per_second: room.admission.users_per_second,
        max_active_users: room.admission.max_active_users,
        entry_token_ttl_seconds: room.admission.entry_token_ttl_seconds,
        sales_open_at: open,
        pre_queue_opens_at: open - i64::from(room.pre_queue.opens_minutes_before) * 60,
        randomize_at_open: room.pre_queue.randomize_at_open,
        // Chained tiers: while the edge gates, a join needs a served pass, so
        // the queue API is no way around the line at the edge.
        pass_required_from: match (&room.edge, activation.enforce_from) {
            (Some(_), Some(from)) if activation.active => from.as_second().max(1),
            _ => 0,
        },
    }
}

/// The tier-1 counter: `perInterval` numbers every `intervalSeconds` from the
/// moment the room is enforced.
pub fn serving_for(
    room: &WaitingRoomSpec,
    activation: &Activation,
    now: Timestamp,
) -> ServingParams {
    ServingParams {
        start: 0,
        per_interval: u64::from(room.admission.serving_rate.per_interval),
        interval_seconds: u64::from(room.admission.serving_rate.interval_seconds),
        epoch: activation.enforce_from.unwrap_or(now).as_second(),
    }
}

/// The Redis the Event's queue service uses (its URL from the Secret the
/// Event names), or `None` without an Event.
async fn queue_redis(
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

async fn write_status(
    api: &Api<WaitingRoom>,
    name: &str,
    status: &WaitingRoomStatus,
) -> Result<(), Error> {
    let patch = json!({"apiVersion": "urr.dev/v1alpha1", "kind": "WaitingRoom", "status": status});
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Kube {
        what: format!("status of WaitingRoom {name}"),
        source,
    })
}

fn set(
    status: &mut WaitingRoomStatus,
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &Time,
) {
    let value = if ok { Status::True } else { Status::False };
    conditions::upsert(
        &mut status.conditions,
        conditions::new(type_, value, reason, message, generation, now.clone()),
    );
}

/// One reconcile of one WaitingRoom (finalizer included).
pub async fn reconcile(room: Arc<WaitingRoom>, ctx: Arc<RoomContext>) -> Result<Action, Error> {
    let namespace = room.namespace().ok_or(Error::MissingNamespace)?;
    let rooms: Api<WaitingRoom> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&rooms, FINALIZER, room, |event| async {
        match event {
            Finalizer::Apply(room) => apply(&room, &ctx, &rooms).await,
            Finalizer::Cleanup(room) => cleanup(&room, &ctx, &rooms).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn apply(
    room: &WaitingRoom,
    ctx: &RoomContext,
    rooms: &Api<WaitingRoom>,
) -> Result<Action, Error> {
    let namespace = room.namespace().ok_or(Error::MissingNamespace)?;
    let name = room.name_any();
    let now = ctx.clock.now();
    let now_time = Time(now);
    let generation = room.metadata.generation;
    let previous = room.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = generation;

    if let Err(invalid) = room.validate() {
        set(
            &mut status,
            conditions::READY,
            false,
            conditions::REASON_INVALID_SPEC,
            invalid.to_string().replace('\n', "; "),
            generation,
            &now_time,
        );
        if status != previous {
            write_status(rooms, &name, &status).await?;
        }
        return Ok(Action::await_change());
    }

    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &namespace);
    let event_name = &room.spec.event_ref.name;
    let Some(event) = events
        .get_opt(event_name)
        .await
        .map_err(|source| Error::Kube {
            what: format!("Event {event_name}"),
            source,
        })?
    else {
        set(
            &mut status,
            conditions::EVENT_FOUND,
            false,
            "EventNotFound",
            format!("no Event {event_name} in {namespace}"),
            generation,
            &now_time,
        );
        set(
            &mut status,
            conditions::READY,
            false,
            "EventNotFound",
            "waiting for the Event",
            generation,
            &now_time,
        );
        if status != previous {
            write_status(rooms, &name, &status).await?;
        }
        return Ok(Action::requeue(RETRY));
    };
    set(
        &mut status,
        conditions::EVENT_FOUND,
        true,
        "EventFound",
        "",
        generation,
        &now_time,
    );

    // Decide.
    let load = ctx.stats.observe(&namespace, event_name).await.load;
    let key = (namespace.clone(), name.clone());
    let drained = ctx
        .drained
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .copied();
    let (activation, drained) = activation::decide(&room.spec, &previous, now, load, drained);
    {
        let mut map = ctx.drained.lock().unwrap_or_else(|p| p.into_inner());
        match drained {
            Some(since) => map.insert(key, since),
            None => map.remove(&key),
        };
    }

    // Write the policy where the queue reads it.
    let policy = policy_for(&room.spec, &event.spec, &activation);
    let serving = serving_for(&room.spec, &activation, now);
    if let Some(mut conn) = queue_redis(ctx, &namespace, Some(&event)).await? {
        redis::pipe()
            .atomic()
            .hset_multiple(policy::policy_key(event_name), &policy.to_fields())
            .ignore()
            .hset_multiple(
                policy::serving_key(event_name),
                &policy::serving_fields(&serving),
            )
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
    }

    // Publish to the edge.
    let mut requeue = activation.recheck_after;
    if let Some(edge_spec) = &room.spec.edge {
        let entry = EdgeEntry {
            v: edge::SCHEMA_VERSION,
            room: format!("{namespace}/{name}"),
            active: activation.active,
            enforce_from: activation.enforce_from.map_or(0, |t| t.as_second()),
            protected: room.spec.paths.protected.clone(),
            bypass: room.spec.paths.bypass.clone(),
            waiting_page: format!("{}{}", edge_spec.waiting_page_path, name),
            serving,
            kids: Vec::new(),
            case_insensitive: room.spec.paths.case_insensitive,
        };
        let outcome =
            edge_step::publish_edge(ctx, &namespace, &name, edge_spec, entry, &previous, now).await;
        if let Some(retry) = edge_step::record_edge(&mut status, outcome, generation, &now_time) {
            requeue = Some(requeue.map_or(retry, |r| r.min(retry)));
        }
    }

    status.active = Some(activation.active);
    status.enforce_from = activation.enforce_from.map(Time);
    if let Some(load) = load {
        status.queue_depth = i64::try_from(load.queue_depth).ok();
        status.active_users = i64::try_from(load.active_users).ok();
        status.estimated_wait_seconds = i64::try_from(
            load.queue_depth / u64::from(room.spec.admission.users_per_second.max(1)),
        )
        .ok();
    }
    let edge = conditions::find(&status.conditions, conditions::EDGE_SYNCED)
        .filter(|_| room.spec.edge.is_some());
    let edge_ok = edge.is_none_or(|c| c.status == "True");
    // A refusal the spec must fix is Ready's reason too, so `kubectl get`
    // and a CD tool waiting on Ready see it without reading EdgeSynced.
    let (reason, message) = match edge {
        _ if edge_ok => (
            "Configured".to_owned(),
            "policy written and edge published".to_owned(),
        ),
        Some(c)
            if c.reason == conditions::REASON_PATH_CONFLICT
                || c.reason == conditions::REASON_WEAK_SIGNING_KEY =>
        {
            (c.reason.clone(), c.message.clone())
        }
        _ => (
            "EdgeNotSynced".to_owned(),
            "see the EdgeSynced condition".to_owned(),
        ),
    };
    set(
        &mut status,
        conditions::READY,
        edge_ok,
        &reason,
        message,
        generation,
        &now_time,
    );
    if status != previous {
        write_status(rooms, &name, &status).await?;
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

async fn cleanup(
    room: &WaitingRoom,
    ctx: &RoomContext,
    rooms: &Api<WaitingRoom>,
) -> Result<Action, Error> {
    let namespace = room.namespace().ok_or(Error::MissingNamespace)?;
    let name = room.name_any();
    // The edge first: once the entry is gone every edge lets everyone through.
    if let Some(edge_spec) = &room.spec.edge {
        let removed = async {
            let writer = ctx.writer(edge_spec).await?;
            let removal = Publication {
                room_key: edge::room_key(&namespace, &name),
                room_id: format!("{namespace}/{name}"),
                entry: None,
                keys: Vec::new(),
            };
            publish::publish(&writer, &removal).await.map(|_| ())
        }
        .await;
        if let Err(error) = removed {
            // Deletion waits (the finalizer stays) and says why; the entry at
            // the edge is unchanged, and a room that cannot be reached fails open there.
            let mut status = room.status.clone().unwrap_or_default();
            let now = Time(ctx.clock.now());
            set(
                &mut status,
                conditions::EDGE_SYNCED,
                false,
                "CleanupPending",
                format!("removing the edge entry failed, retrying: {error}"),
                room.metadata.generation,
                &now,
            );
            write_status(rooms, &name, &status).await?;
            return Err(error);
        }
    }
    // Then the policy, if the Event (and so the Redis URL) is still there.
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &namespace);
    let event_name = &room.spec.event_ref.name;
    let event = events
        .get_opt(event_name)
        .await
        .map_err(|source| Error::Kube {
            what: format!("Event {event_name}"),
            source,
        })?;
    if let Some(mut conn) = queue_redis(ctx, &namespace, event.as_ref()).await? {
        redis::pipe()
            .del(policy::policy_key(event_name))
            .del(policy::serving_key(event_name))
            .query_async::<()>(&mut conn)
            .await?;
    }
    ctx.drained
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(namespace, name));
    Ok(Action::await_change())
}

/// Backoff after a failed reconcile.
pub fn error_policy(_room: Arc<WaitingRoom>, error: &Error, _ctx: Arc<RoomContext>) -> Action {
    tracing::warn!(%error, "waiting room reconcile failed");
    Action::requeue(RETRY)
}

/// Runs the WaitingRoom controller until shutdown.
pub async fn run(ctx: Arc<RoomContext>, namespace: Option<&str>) {
    use futures::StreamExt;
    let rooms: Api<WaitingRoom> = match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    kube::runtime::Controller::new(
        rooms,
        kube::runtime::watcher::Config::default().any_semantic(),
    )
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "waiting room controller event");
        }
    })
    .await;
}
