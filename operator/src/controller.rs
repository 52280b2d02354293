//! The Event controller, a pipeline per reconcile:
//!
//! 1. **read** the Event (from the watch) and what its services report;
//! 2. **validate** it (`urr-crds` rules): an invalid spec gets `Ready=False`,
//!    reason `InvalidSpec`, with every violation, no children are written, and
//!    it waits for the next change instead of retrying in a loop;
//! 3. **build** the desired children (per service: ConfigMap, Deployment,
//!    Service, PodDisruptionBudget) with the replicas the phase and load ask for;
//! 4. **apply** them with server-side apply under one field manager, forced,
//!    so hand edits to fields we own are repaired and other managers' fields
//!    are left alone (a no-op apply writes nothing on the server);
//! 5. **status**: phase, conditions, replicas, seats, queue depth, written
//!    with server-side apply on the status subresource only when it changed;
//!    a Kubernetes Event on every phase change.
//!
//! It requeues at the next phase boundary (pre-warm, open, close), and every
//! 15 s while on sale to follow the load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;
use urr_crds::conditions::{self, Status};
use urr_crds::event::{EventStatus, SeatCounts, ServiceReplicas, ServicesStatus};
use urr_crds::validation::{InvalidSpec, Validate};
use urr_crds::{Event, EventPhase, WaitingRoom};

use crate::children::{self, BuildError, Defaults, FIELD_MANAGER, QueueRoom, ServiceKind};
use crate::lifecycle;
use crate::metrics::OperatorMetrics;
use crate::scaling::{self, DEFAULT_STABILIZATION, Stabilizer};
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

/// One reconcile step that failed, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Event has no namespace")]
    MissingNamespace,
    #[error("building children: {0}")]
    Build(#[from] BuildError),
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
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

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

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

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
        .map_err(|source| Error::Apply {
            kind: K::kind(&()).into_owned(),
            name,
            source,
        })
}

/// The status of an Event whose spec is refused.
fn invalid_status(
    previous: &EventStatus,
    generation: Option<i64>,
    invalid: &InvalidSpec,
    now: Time,
) -> EventStatus {
    let mut status = previous.clone();
    status.observed_generation = generation;
    let message = invalid
        .0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    conditions::upsert(
        &mut status.conditions,
        conditions::new(
            conditions::READY,
            Status::False,
            conditions::REASON_INVALID_SPEC,
            message,
            generation,
            now.clone(),
        ),
    );
    conditions::upsert(
        &mut status.conditions,
        conditions::new(
            conditions::PROGRESSING,
            Status::False,
            conditions::REASON_INVALID_SPEC,
            "waiting for a valid spec",
            generation,
            now,
        ),
    );
    status
}

async fn write_status(api: &Api<Event>, name: &str, status: &EventStatus) -> Result<(), Error> {
    let patch = json!({"apiVersion": "urr.dev/v1alpha1", "kind": "Event", "status": status});
    api.patch_status(name, &apply_params(), &Patch::Apply(&patch))
        .await
        .map(|_| ())
        .map_err(|source| Error::Status {
            name: name.to_owned(),
            source,
        })
}

/// Publishes a Kubernetes Event. kube's `Recorder` folds events with the same
/// type, reason and action into one series (only its count grows), so
/// `action` says what happened specifically (the phase entered): with one
/// fixed action every phase change after the first was lost in the count of
/// the first (found on a real API server).
async fn publish(
    ctx: &Context,
    event: &Event,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let reference = event.object_ref(&());
    let kube_event = KubeEvent {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&kube_event, &reference).await {
        tracing::warn!(%error, "could not publish a Kubernetes event");
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
    let namespace = event.namespace().ok_or(Error::MissingNamespace)?;
    let name = event.name_any();
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &namespace);
    let now = ctx.clock.now();
    let now_time = Time(now);
    let generation = event.metadata.generation;
    let previous = event.status.clone().unwrap_or_default();

    // Being deleted: the API server garbage-collects the children through
    // their owner references; writing to them now would only race it.
    if event.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }

    // Validate: a bad spec is reported once and not retried until it changes.
    if let Err(invalid) = event.validate() {
        ctx.metrics.count("event", "invalid");
        let status = invalid_status(&previous, generation, &invalid, now_time);
        if status != previous {
            write_status(&events, &name, &status).await?;
            publish(
                ctx,
                event,
                EventType::Warning,
                conditions::REASON_INVALID_SPEC,
                "Validate",
                invalid.to_string(),
            )
            .await;
        }
        return Ok(Action::await_change());
    }

    // Observe.
    let observed = ctx.stats.observe(&namespace, &name).await;
    let seats = observed.seats.or(previous.seats);
    let sold_out = match observed.seats {
        Some(SeatCounts { total, sold, .. }) => total > 0 && sold >= total,
        None => previous.phase == Some(EventPhase::SoldOut),
    };
    let phase = lifecycle::phase_at(&event.spec, now, sold_out);
    let needs_load = matches!(phase, EventPhase::OnSale | EventPhase::Prewarming);
    let degraded = needs_load && observed.load.is_none();

    // Build and apply.
    let room = ctx.room_of(event);
    let mut services = ServicesStatus::default();
    for service in ServiceKind::ALL {
        let key = (namespace.clone(), name.clone(), service);
        let recommendation = scaling::recommend(
            &event.spec,
            service,
            now,
            sold_out,
            observed.load.as_ref(),
            ctx.last_replicas(&key),
        );
        let replicas = ctx.stabilize(key, now, recommendation.replicas);
        let built = children::build(event, service, replicas, &ctx.defaults, room.as_ref())?;
        apply::<ConfigMap>(&ctx.client, &namespace, &built.config_map).await?;
        let deployment = apply::<Deployment>(&ctx.client, &namespace, &built.deployment).await?;
        apply::<Service>(&ctx.client, &namespace, &built.service).await?;
        apply::<PodDisruptionBudget>(&ctx.client, &namespace, &built.pod_disruption_budget).await?;
        let ready = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let replicas_status = ServiceReplicas {
            desired: replicas,
            ready,
        };
        match service {
            ServiceKind::Queue => services.queue = replicas_status,
            ServiceKind::Ticket => services.ticket = replicas_status,
            ServiceKind::Payment => services.payment = replicas_status,
        }
    }

    // Status.
    let all = [services.queue, services.ticket, services.payment];
    let all_ready = all.iter().all(|s| s.ready >= 1);
    let settled = all.iter().all(|s| s.ready == s.desired);
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.phase = Some(phase);
    status.services = Some(services);
    status.seats = seats;
    status.queue_depth = observed
        .load
        .map(|l| i64::try_from(l.queue_depth).unwrap_or(i64::MAX))
        .or(previous.queue_depth);
    let (ready_status, ready_reason, ready_message) = if all_ready {
        (
            Status::True,
            "Running",
            format!("{phase:?}: every service has ready pods"),
        )
    } else {
        (
            Status::False,
            "Starting",
            format!("{phase:?}: waiting for pods of every service to be ready"),
        )
    };
    conditions::upsert(
        &mut status.conditions,
        conditions::new(
            conditions::READY,
            ready_status,
            ready_reason,
            ready_message,
            generation,
            now_time.clone(),
        ),
    );
    let (progressing, progress_reason) = if settled {
        (Status::False, "Settled")
    } else {
        (Status::True, "Scaling")
    };
    conditions::upsert(
        &mut status.conditions,
        conditions::new(
            conditions::PROGRESSING,
            progressing,
            progress_reason,
            "ready replicas against desired",
            generation,
            now_time.clone(),
        ),
    );
    let (degraded_status, degraded_reason, degraded_message) = if degraded {
        (
            Status::True,
            "StatsUnavailable",
            "the queue service's stats cannot be read; keeping the last scale",
        )
    } else {
        (Status::False, "StatsAvailable", "")
    };
    conditions::upsert(
        &mut status.conditions,
        conditions::new(
            conditions::DEGRADED,
            degraded_status,
            degraded_reason,
            degraded_message,
            generation,
            now_time,
        ),
    );
    if status != previous {
        write_status(&events, &name, &status).await?;
    }
    if previous.phase != Some(phase) {
        let from = previous
            .phase
            .map_or_else(|| "new".to_owned(), |p| format!("{p:?}"));
        publish(
            ctx,
            event,
            EventType::Normal,
            "PhaseChanged",
            &format!("Enter{phase:?}"),
            format!("{from} → {phase:?}"),
        )
        .await;
    }
    ctx.metrics.count("event", "ok");

    // Requeue at the next boundary; follow the load while it matters.
    let next = lifecycle::next_boundary(&event.spec, now);
    Ok(match (phase, next) {
        (EventPhase::OnSale | EventPhase::SoldOut, Some(next)) => {
            Action::requeue(next.min(LOAD_INTERVAL))
        }
        (EventPhase::Closed, _) | (_, None) => Action::await_change(),
        (_, Some(next)) => Action::requeue(next.min(MAX_REQUEUE)),
    })
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
