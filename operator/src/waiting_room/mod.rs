//! The WaitingRoom controller, a pipeline per reconcile (with a finalizer);
//! [`reconcile`]'s `apply` is a short driver of these steps, each in its own
//! module with its own error context:
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
//! 5. **page**: the `spec.page` ConfigMap checked and its page written
//!    for the queue ([`page_step`], condition `PageTemplateValid`);
//! 6. **status**: active, `enforceFrom`, load figures, edge sync, conditions.
//!
//! Deleting a WaitingRoom removes its keys and its Redis policy first (the
//! finalizer); if the store is unreachable, deletion waits and says so. A room
//! that is gone from the edge lets everyone through: the gate fails open.
//!
//! Rooms: [`read`] (the Event, the activation), [`desired`] (policy, serving
//! parameters and edge entry, pure), [`queue_policy`] (the Redis write),
//! `edge_step` with [`publish`] and [`keys`] (the KeyValueStore), [`status`]
//! and `context` (the shared caches and lookups).

pub mod activation;
mod context;
pub mod control_step;
pub mod desired;
mod edge_step;
pub mod keys;
pub mod page_step;
pub mod publish;
mod queue_policy;
mod read;
mod status;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use urr_crds::WaitingRoom;
use urr_crds::conditions;
use urr_crds::waiting_room::Tier1Counter;
use urr_service_common::admission::AdmissionState;

use crate::edge;
use crate::kvs::KvsError;
pub use context::RoomContext;
pub use desired::{policy_for, serving_for};
use publish::Publication;
use status::set;

pub const FINALIZER: &str = "urr.dev/waiting-room";
/// How often an active room re-reads the queue's figures.
pub const FOLLOW: Duration = Duration::from_secs(15);
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

/// A live room: each step in turn, the status written once at the end (or
/// where a step stops the pass).
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

    if let Err(invalid) = validate::spec(room) {
        status::invalid_spec(&mut status, invalid, generation, &now_time);
        status::write_if_changed(rooms, &name, &status, &previous).await?;
        return Ok(Action::await_change());
    }
    let event_name = &room.spec.event_ref.name;
    let Some(event) = read::event(ctx, &namespace, room).await? else {
        status::event_missing(&mut status, &namespace, event_name, generation, &now_time);
        status::write_if_changed(rooms, &name, &status, &previous).await?;
        return Ok(Action::requeue(RETRY));
    };
    status::event_found(&mut status, generation, &now_time);
    if let Err(invalid) = validate::against_event(&room.spec, &event.spec) {
        status::invalid_spec(&mut status, invalid, generation, &now_time);
        status::write_if_changed(rooms, &name, &status, &previous).await?;
        return Ok(Action::requeue(RETRY));
    }

    let (activation, observed) = read::decide(ctx, &namespace, room, &previous, now).await;
    let policy = desired::policy_for(&room.spec, &event.spec, &activation);
    let (serving, tier1) = desired::serving_for(&room.spec, &activation, previous.tier1, now);
    status.tier1 = (tier1 != Tier1Counter::default()).then_some(tier1);
    let controls = queue_policy::Controls {
        blocked_users: room.spec.control.block_users.clone(),
        kicks: desired::kicks(&room.spec, &previous.kicked_users),
    };
    queue_policy::write(
        ctx, &namespace, event_name, &event, &policy, &serving, &controls,
    )
    .await?;
    page_step::sync(
        ctx,
        &namespace,
        &room.spec,
        &event,
        &mut status,
        generation,
        &now_time,
    )
    .await?;
    control_step::record(
        &mut status,
        &room.spec,
        &policy,
        observed.room,
        generation,
        &now_time,
    );

    // While the room holds people back, its figures (status.admission,
    // placesLeft, the edge's soldOut) follow the queue every few seconds.
    let mut requeue = match (activation.active, activation.recheck_after) {
        (true, Some(after)) => Some(after.min(FOLLOW)),
        (true, None) => Some(FOLLOW),
        (false, after) => after,
    };
    let sold_out = observed
        .room
        .is_some_and(|r| r.admission == AdmissionState::SoldOut);
    if let Some(edge_spec) = &room.spec.edge {
        let entry = desired::edge_entry(
            &namespace,
            &name,
            &room.spec,
            edge_spec,
            &activation,
            serving,
            sold_out,
        );
        let outcome =
            edge_step::publish_edge(ctx, &namespace, &name, edge_spec, entry, &previous, now).await;
        if let Some(retry) = edge_step::record_edge(&mut status, outcome, generation, &now_time) {
            requeue = Some(requeue.map_or(retry, |r| r.min(retry)));
        }
    }

    status::settle(&mut status, room, &activation, observed.load, &now_time);
    status::write_if_changed(rooms, &name, &status, &previous).await?;
    control_step::announce(ctx, room, &previous, &status).await;
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// A deleted room (the finalizer's cleanup): its edge entry, then its policy.
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
            status::write(rooms, &name, &status).await?;
            return Err(error);
        }
    }
    // Then the policy, if the Event (and so the Redis URL) is still there.
    let event = read::event(ctx, &namespace, room).await?;
    queue_policy::remove(ctx, &namespace, &room.spec.event_ref.name, event.as_ref()).await?;
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
    let config_maps: Api<PartialObjectMeta<ConfigMap>> = match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let controller = kube::runtime::Controller::new(
        rooms,
        kube::runtime::watcher::Config::default().any_semantic(),
    );
    // An edit of a room's page ConfigMap reconciles the room, so a fixed
    // template is served (and a broken one refused) without touching the
    // room. Metadata only: the data is read by name when a room needs it,
    // not cached for every ConfigMap of the cluster.
    let store = controller.store();
    let config_map_changes = watcher(config_maps, watcher::Config::default())
        .default_backoff()
        .touched_objects();
    controller
        .watches_stream(
            config_map_changes,
            move |map: PartialObjectMeta<ConfigMap>| {
                let namespace = map.namespace();
                let name = map.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|room| {
                        room.namespace() == namespace
                            && room
                                .spec
                                .page
                                .as_ref()
                                .is_some_and(|p| p.template_config_map == name)
                    })
                    .map(|room| ObjectRef::from_obj(&*room))
                    .collect::<Vec<_>>()
            },
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
