//! The Event controller: [`reconcile`] is a short driver of named steps,
//! each a module with its own error context:
//!
//! 1. [`read`] the Event (from the watch) and what its services report;
//! 2. **validate** it (`urr-crds` rules): an invalid spec gets `Ready=False`,
//!    reason `InvalidSpec`, with every violation, no children are written, and
//!    it waits for the next change instead of retrying in a loop;
//! 3. [`desired`]: the children (per service: ConfigMap, Deployment,
//!    Service, PodDisruptionBudget) with the replicas the phase and load ask
//!    for, built without a client;
//! 4. [`apply`] them with server-side apply under one field manager, forced,
//!    so hand edits to fields we own are repaired and other managers' fields
//!    are left alone (a no-op apply writes nothing on the server);
//! 5. [`status`]: phase, conditions, replicas, seats, queue depth, written
//!    with server-side apply on the status subresource only when it changed;
//!    a Kubernetes Event on every phase change.
//!
//! It requeues at the next phase boundary (pre-warm, open, close), and every
//! 15 s while on sale to follow the load.

mod apply;
mod desired;
mod read;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use urr_crds::validation::Validate;
use urr_crds::{Event, EventPhase, WaitingRoom};

use crate::children::{BuildError, Defaults, QueueRoom, ServiceKind};
use crate::lifecycle;
use crate::metrics::OperatorMetrics;
use crate::scaling::{DEFAULT_STABILIZATION, Stabilizer};
use crate::stats::StatsSource;

/// How often the load is read while an event is on sale.
pub const LOAD_INTERVAL: Duration = Duration::from_secs(15);
/// Longest sleep between reconciles of a quiet event (a safety net for missed watches).
pub const MAX_REQUEUE: Duration = Duration::from_secs(3600);

/// A source of time, so tests can stand exactly on a boundary.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that says what it is told.
#[derive(Debug)]
pub struct FixedClock(pub Mutex<Timestamp>);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One reconcile step that failed, with what it was doing: a variant per
/// step that can fail (validation cannot: a refused spec is a status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// [`read`]: the Event did not come from a namespace.
    #[error("the Event has no namespace")]
    MissingNamespace,
    /// [`desired`]: the children could not be built.
    #[error("building children: {0}")]
    Build(#[from] BuildError),
    /// [`apply`]: the API server refused or did not answer an apply.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
    /// [`status`]: the status subresource could not be written.
    #[error("writing the status of {name}: {source}")]
    Status { name: String, source: kube::Error },
}

type ScaleKey = (String, String, ServiceKind);

/// Per-service scaling memory: the stabilizer and the last applied count.
#[derive(Debug)]
struct ScaleState {
    stabilizer: Stabilizer,
    last: i32,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub defaults: Defaults,
    pub stats: Arc<dyn StatsSource>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<OperatorMetrics>,
    scale: Mutex<HashMap<ScaleKey, ScaleState>>,
    failures: Mutex<HashMap<(String, String), u32>>,
    /// The WaitingRooms (a reflector's cache, so reading them costs no
    /// request): the queue is wired to the room that names its Event.
    rooms: Option<Store<WaitingRoom>>,
}

urr_service_common::debug_fields!(Context { defaults });

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        defaults: Defaults,
        stats: Arc<dyn StatsSource>,
        clock: Arc<dyn Clock>,
        metrics: Arc<OperatorMetrics>,
    ) -> Self {
        Self {
            client,
            recorder,
            defaults,
            stats,
            clock,
            metrics,
            scale: Mutex::default(),
            failures: Mutex::default(),
            rooms: None,
        }
    }

    /// Reads WaitingRooms from `rooms` (the reflector [`run`] keeps).
    pub fn with_rooms(mut self, rooms: Store<WaitingRoom>) -> Self {
        self.rooms = Some(rooms);
        self
    }

    fn room_of(&self, event: &Event) -> Option<QueueRoom> {
        let rooms = self.rooms.as_ref()?.state();
        QueueRoom::find(rooms.iter().map(AsRef::as_ref), event)
    }

    fn last_replicas(&self, key: &ScaleKey) -> Option<i32> {
        self.scale
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(|s| s.last)
    }

    fn stabilize(&self, key: ScaleKey, now: Timestamp, recommended: i32) -> i32 {
        let mut scale = self.scale.lock().unwrap_or_else(|p| p.into_inner());
        let state = scale.entry(key).or_insert_with(|| ScaleState {
            stabilizer: Stabilizer::new(DEFAULT_STABILIZATION),
            last: recommended,
        });
        let replicas = state.stabilizer.apply(now, recommended);
        state.last = replicas;
        replicas
    }

    fn forget(&self, namespace: &str, name: &str) {
        self.scale
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(ns, event, _), _| !(ns == namespace && event == name));
    }
}

/// One reconcile of one Event.
pub async fn reconcile(event: Arc<Event>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&event, &ctx).await;
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    let key = (event.namespace().unwrap_or_default(), event.name_any());
    match &result {
        Ok(_) => {
            ctx.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
        Err(error) => {
            tracing::warn!(event = %key.1, namespace = %key.0, %error, "reconcile failed")
        }
    }
    result
}

async fn reconcile_inner(event: &Event, ctx: &Context) -> Result<Action, Error> {
    let target = read::Target::of(event, ctx)?;
    // Being deleted: the API server garbage-collects the children through
    // their owner references; writing to them now would only race it.
    if event.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // A bad spec is reported once and not retried until it changes.
    if let Err(invalid) = event.validate() {
        ctx.metrics.count("event", "invalid");
        status::refuse(ctx, event, &target, &invalid).await?;
        return Ok(Action::await_change());
    }
    let observed = read::observe(ctx, event, &target).await;
    let replicas = desired::replicas(ctx, event, &target, &observed);
    let room = ctx.room_of(event);
    let desired = desired::children(event, replicas, &ctx.defaults, room.as_ref())?;
    let services = apply::children(&ctx.client, &target.namespace, &desired).await?;
    let status = status::running(&target, &observed, services);
    status::report(ctx, event, &target, &status, observed.phase).await?;
    ctx.metrics.count("event", "ok");
    Ok(requeue(event, target.now, observed.phase))
}

/// Requeue at the next boundary; follow the load while it matters.
fn requeue(event: &Event, now: Timestamp, phase: EventPhase) -> Action {
    let next = lifecycle::next_boundary(&event.spec, now);
    match (phase, next) {
        (EventPhase::OnSale | EventPhase::SoldOut, Some(next)) => {
            Action::requeue(next.min(LOAD_INTERVAL))
        }
        (EventPhase::Closed, _) | (_, None) => Action::await_change(),
        (_, Some(next)) => Action::requeue(next.min(MAX_REQUEUE)),
    }
}

/// Backoff after a failed reconcile: 5 s, doubling, at most 5 minutes.
pub fn error_policy(event: Arc<Event>, _error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.count("event", "error");
    let key = (event.namespace().unwrap_or_default(), event.name_any());
    let mut failures = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
    let count = failures.entry(key).or_insert(0);
    *count = count.saturating_add(1);
    Action::requeue(backoff(*count))
}

pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(
        5u64.saturating_mul(1u64 << failures.saturating_sub(1).min(10))
            .min(300),
    )
}

/// Runs the Event controller until shutdown. `namespace` limits it to one
/// namespace; `None` watches all.
pub async fn run(ctx: Context, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let (events, deployments, rooms): (Api<Event>, Api<Deployment>, Api<WaitingRoom>) =
        match namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client),
            ),
        };
    // A WaitingRoom's change (created, edge key rotated, deleted) reconciles
    // the Event it names, so its queue is rewired; the reflector's store is
    // where the reconcile reads the rooms from.
    let (store, writer) = reflector::store();
    let room_changes = watcher(rooms, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let ctx = Arc::new(ctx.with_rooms(store));
    let children = watcher::Config::default().labels("app.kubernetes.io/managed-by=urr-operator");
    // The Events' cache without their managedFields: half of a real Event's
    // JSON, never read by a reconcile (it applies with its own field
    // manager), and 66 of 111 MB with 1,000 Events (benches/reconcile.rs).
    let (event_store, event_writer) = reflector::store();
    let event_changes = watcher(events, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|event: &mut Event| event.managed_fields_mut().clear())
        .reflect(event_writer)
        .applied_objects();
    Controller::for_stream(event_changes, event_store)
        .owns(deployments, children)
        .watches_stream(room_changes, |room: WaitingRoom| {
            let namespace = room.namespace()?;
            Some(ObjectRef::<Event>::new(&room.spec.event_ref.name).within(&namespace))
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| {
            let ctx = ctx.clone();
            async move {
                if let Ok((object, _)) = result {
                    tracing::debug!(event = %object.name, "reconciled");
                } else if let Err(error) = result {
                    // Deleted objects land here too; forget their scaling memory.
                    if let kube::runtime::controller::Error::ObjectNotFound(object) = &error {
                        ctx.forget(
                            object.namespace.as_deref().unwrap_or_default(),
                            &object.name,
                        );
                    }
                    tracing::debug!(%error, "controller event");
                }
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        let seconds: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(seconds, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
