//! The operator against the real control plane of the local stack: etcd,
//! kube-apiserver with RBAC, kube-controller-manager (garbage collector,
//! Deployment and disruption controllers), kube-scheduler and kwok, whose
//! fake nodes make Deployment pods Running and Ready. The WaitingRoom tests
//! also use the stack's Redis and its CloudFront KeyValueStore emulator.
//!
//! ```sh
//! eval "$(URR_STACK_DIR=/tmp/urr-dev-stack scripts/stack env)"
//! cargo test -p urr-operator --test cluster -- --nocapture
//! ```
//!
//! Each test installs the Helm chart (its RBAC, service account and
//! environment), runs the real binary with the chart's service-account token
//! and watches a namespace of its own (see `support`), so they run in parallel.

// Shared with the other cluster tests; not every helper is used here.
#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use urr_crds::event::Prewarm;
use urr_crds::{Event, EventPhase, WaitingRoom};
use urr_operator::kvs::KvsWriter;
use urr_service_common::policy;

use support::{
    Operator, Release, SIGNING_KEY, TestNamespace, admin, create_secrets, delete_store,
    ensure_store, eventually, example_event, far_future, install_crds, random_db, redis_url,
    stack_env, suffix,
};

const CONFIG_HASH: &str = "urr.dev/config-hash";
const SERVICES: [&str; 3] = ["queue", "ticket", "payment"];

/// `examples/waitingroom.yaml` as the room of `event`, publishing to the store `store`.
fn example_room_on(event: &str, store: &str) -> WaitingRoom {
    let mut room = support::example_room(event);
    room.spec.paths.protected = vec![
        format!("/events/{event}"),
        format!("/api/v1/events/{event}"),
    ];
    let edge = room
        .spec
        .edge
        .as_mut()
        .expect("the example room has an edge");
    edge.key_value_store_name = Some(store.to_owned());
    // Keys are bound to their room (`key/<ns>/<name>/<kid>`), so the id may
    // be shared; a distinct one per run shows which run wrote what.
    edge.signing_key_id = key_id(event);
    room
}

fn key_id(event: &str) -> String {
    format!("kid-{event}")
}

fn selector(event: &str) -> ListParams {
    ListParams::default().labels(&format!("urr.dev/event={event}"))
}

async fn list<K>(client: &Client, namespace: &str, event: &str) -> Result<Vec<K>, String>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .list(&selector(event))
        .await
        .map(|l| l.items)
        .map_err(|e| format!("listing {}: {e}", K::kind(&())))
}

/// `items` are exactly the three `<event>-<service>` children of one kind,
/// each with the Event (this very object: its uid) as controller owner and
/// the event label.
fn owned_by_event<K: Resource<DynamicType = ()>>(
    items: &[K],
    event: &str,
    uid: &str,
) -> Result<(), String> {
    let kind = K::kind(&());
    let mut names: Vec<String> = items.iter().map(|i| i.name_any()).collect();
    names.sort();
    let mut expected: Vec<String> = SERVICES.iter().map(|s| format!("{event}-{s}")).collect();
    expected.sort();
    if names != expected {
        return Err(format!("{kind}s labelled {event}: {names:?}"));
    }
    for item in items {
        let controllers: Vec<_> = item
            .owner_references()
            .iter()
            .filter(|o| o.controller == Some(true))
            .collect();
        match controllers.as_slice() {
            [owner]
                if owner.api_version == "urr.dev/v1alpha1"
                    && owner.kind == "Event"
                    && owner.name == event
                    && owner.uid == uid => {}
            other => {
                return Err(format!(
                    "{kind} {} has controller owners {other:?}",
                    item.name_any()
                ));
            }
        }
        if item.labels().get("urr.dev/event").map(String::as_str) != Some(event) {
            return Err(format!(
                "{kind} {} labels {:?}",
                item.name_any(),
                item.labels()
            ));
        }
    }
    Ok(())
}

/// The twelve children of `event` (uid `uid`): a ConfigMap, Deployment,
/// Service and PodDisruptionBudget per service, all owned by it.
async fn twelve_children(
    client: &Client,
    namespace: &str,
    event: &str,
    uid: &str,
) -> Result<(), String> {
    owned_by_event(
        &list::<ConfigMap>(client, namespace, event).await?,
        event,
        uid,
    )?;
    owned_by_event(
        &list::<Deployment>(client, namespace, event).await?,
        event,
        uid,
    )?;
    owned_by_event(
        &list::<Service>(client, namespace, event).await?,
        event,
        uid,
    )?;
    owned_by_event(
        &list::<PodDisruptionBudget>(client, namespace, event).await?,
        event,
        uid,
    )
}

/// What a reconcile could have written to one object: its resourceVersion
/// moves with any write; the generation and the `urr-operator` entries of
/// its managedFields move only with a write of the operator's (the
/// controller-manager's status writes to Deployments and PDBs move neither).
#[derive(Debug, Clone, PartialEq)]
struct Version {
    resource_version: String,
    generation: Option<i64>,
    operator_fields: Vec<String>,
}

fn versions_of<K: Resource<DynamicType = ()>>(items: Vec<K>, out: &mut BTreeMap<String, Version>) {
    for item in items {
        let key = format!("{}/{}", K::kind(&()), item.name_any());
        let operator_fields = item
            .managed_fields()
            .iter()
            .filter(|f| f.manager.as_deref() == Some("urr-operator"))
            .map(|f| serde_json::to_string(f).unwrap_or_default())
            .collect();
        out.insert(
            key,
            Version {
                resource_version: item.resource_version().unwrap_or_default(),
                generation: item.meta().generation,
                operator_fields,
            },
        );
    }
}

/// The [`Version`] of each child of `event`.
async fn child_versions(
    client: &Client,
    namespace: &str,
    event: &str,
) -> Result<BTreeMap<String, Version>, String> {
    let mut out = BTreeMap::new();
    versions_of(list::<ConfigMap>(client, namespace, event).await?, &mut out);
    versions_of(
        list::<Deployment>(client, namespace, event).await?,
        &mut out,
    );
    versions_of(list::<Service>(client, namespace, event).await?, &mut out);
    versions_of(
        list::<PodDisruptionBudget>(client, namespace, event).await?,
        &mut out,
    );
    Ok(out)
}

/// The [`Version`] of the Event and of each of its children.
async fn versions(
    client: &Client,
    namespace: &str,
    event: &str,
) -> Result<BTreeMap<String, Version>, String> {
    let mut out = child_versions(client, namespace, event).await?;
    let object = Api::<Event>::namespaced(client.clone(), namespace)
        .get(event)
        .await
        .map_err(|e| format!("reading Event {event}: {e}"))?;
    versions_of(vec![object], &mut out);
    Ok(out)
}

/// Replicas per service as the Deployments ask for them.
async fn deployment_replicas(
    client: &Client,
    namespace: &str,
    event: &str,
) -> Result<[i32; 3], String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let mut replicas = [0; 3];
    for (slot, service) in replicas.iter_mut().zip(SERVICES) {
        let name = format!("{event}-{service}");
        *slot = deployments
            .get(&name)
            .await
            .map_err(|e| format!("reading Deployment {name}: {e}"))?
            .spec
            .and_then(|s| s.replicas)
            .unwrap_or(0);
    }
    Ok(replicas)
}

/// The Event's phase, and its status' `services` as (desired, ready) per service.
fn phase_and_services(event: &Event) -> (Option<EventPhase>, Option<[(i32, i32); 3]>) {
    let status = event.status.as_ref();
    let services = status.and_then(|s| s.services.as_ref()).map(|s| {
        [
            (s.queue.desired, s.queue.ready),
            (s.ticket.desired, s.ticket.ready),
            (s.payment.desired, s.payment.ready),
        ]
    });
    (status.and_then(|s| s.phase), services)
}

fn condition<'a>(
    conditions: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn pod_condition(pod: &Pod, type_: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// One service as the cluster runs it, once its Deployment has settled (its
/// status is for its current spec, every pod is of the current template and
/// kwok runs each one): (replicas, ready replicas, pods kwok runs that are
/// nevertheless not Ready).
///
/// The last count is the stack's doing, not the operator's: kwok renews no
/// node Lease, so every ~55 s the node-lifecycle controller finds every node
/// silent ("all Nodes are not-Ready. Entering master disruption mode" in its
/// log) and sets Ready=False on every pod, which kwok never sets back; such
/// pods keep ContainersReady=True.
async fn service_state(
    client: &Client,
    namespace: &str,
    event: &str,
    service: &str,
) -> Result<(i32, i32, i32), String> {
    let name = format!("{event}-{service}");
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(&name)
        .await
        .map_err(|e| format!("reading Deployment {name}: {e}"))?;
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if status.observed_generation != deployment.metadata.generation
        || status.replicas.unwrap_or(0) != replicas
        || status.updated_replicas.unwrap_or(0) != replicas
    {
        return Err(format!(
            "Deployment {name} ({replicas} replicas) not settled: {status:?}"
        ));
    }
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/instance={event},app.kubernetes.io/name=urr-{service}"
        )))
        .await
        .map_err(|e| format!("listing pods of {name}: {e}"))?
        .items;
    let running: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| pod_condition(p, "ContainersReady"))
        .collect();
    if i32::try_from(running.len()).ok() != Some(replicas) {
        return Err(format!(
            "{} of {replicas} pods of {name} run",
            running.len()
        ));
    }
    let marked = running
        .iter()
        .filter(|p| !pod_condition(p, "Ready"))
        .count();
    let marked = i32::try_from(marked).unwrap_or(i32::MAX);
    let ready = status.ready_replicas.unwrap_or(0);
    if ready + marked != replicas {
        return Err(format!(
            "Deployment {name}: {ready} ready and {marked} not Ready of {replicas} running pods"
        ));
    }
    Ok((replicas, ready, marked))
}

/// Waits until the Event is in `phase` with `replicas` per service, the
/// Deployments have settled on them, and the status reports, per service,
/// exactly the desired count and the ready count of the Deployment (the pods
/// kwok made Ready, through the status the controller-manager writes).
/// Ready equals desired unless the stack marked pods not Ready (see
/// [`service_state`]); then it is said, and the status must follow it.
async fn settled(
    client: &Client,
    namespace: &str,
    event: &str,
    phase: EventPhase,
    replicas: [i32; 3],
    timeout: Duration,
) -> Event {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let (object, marked) = eventually(
        &format!(
            "Event {event} {phase:?} with {replicas:?} replicas, ready as the Deployments say"
        ),
        timeout,
        || async {
            let object = events.get(event).await.map_err(|e| e.to_string())?;
            let mut cluster = [(0, 0); 3];
            let mut marked = 0;
            for (slot, service) in cluster.iter_mut().zip(SERVICES) {
                let (desired, ready, not_ready) =
                    service_state(client, namespace, event, service).await?;
                *slot = (desired, ready);
                marked += not_ready;
            }
            let (seen_phase, services) = phase_and_services(&object);
            let generation = object.metadata.generation;
            let observed = object.status.as_ref().and_then(|s| s.observed_generation);
            if seen_phase == Some(phase)
                && cluster.map(|c| c.0) == replicas
                && services == Some(cluster)
                && observed == generation
            {
                Ok((object, marked))
            } else {
                Err(format!(
                    "phase {seen_phase:?}, status (desired, ready) {services:?}, Deployments \
                     {cluster:?}, observedGeneration {observed:?} of {generation:?}"
                ))
            }
        },
    )
    .await;
    if marked > 0 {
        println!(
            "note: {marked} pods of {event} were set not Ready by the node-lifecycle \
             controller (kwok renews no node Lease); the status reports them as such"
        );
    }
    object
}

fn config_hash(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH)
        .cloned()
}

fn display_name_of(config_map: &ConfigMap) -> Option<String> {
    let settings = config_map.data.as_ref()?.get("URR_EVENT_SETTINGS")?;
    let settings: Value = serde_json::from_str(settings).ok()?;
    settings["displayName"].as_str().map(str::to_owned)
}

/// Everything of one Event's life but the clock: children, owners, a quiet
/// second reconcile, repair, roll-out on a spec change, readiness, GC.
#[tokio::test]
async fn an_event_gets_owned_children_that_settle_are_repaired_roll_and_are_collected() {
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-event").await;
    create_secrets(&client, &ns.name, &redis_url(random_db())).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let event = example_event("aurora-seoul-2026", far_future());
    let name = event.name_any();
    let created = events
        .create(&PostParams::default(), &event)
        .await
        .expect("the API server accepts the example Event");
    let uid = created.uid().expect("a created Event has a uid");

    // 1. Twelve children, each controlled by this Event and labelled with it.
    eventually(
        "the twelve children of the Event",
        Duration::from_secs(60),
        || twelve_children(&client, &ns.name, &name, &uid),
    )
    .await;

    // 2. kwok's Ready pods reach the Event's status: desired == min, ready
    // as the Deployments count it (== desired unless the stack interfered).
    let object = settled(
        &client,
        &ns.name,
        &name,
        EventPhase::Scheduled,
        [2, 2, 2],
        Duration::from_secs(60),
    )
    .await;
    // Ready=True exactly when every service has a ready pod.
    let every_service_ready = phase_and_services(&object)
        .1
        .is_some_and(|s| s.iter().all(|(_, ready)| *ready >= 1));
    let ready = condition(&object.status.as_ref().expect("status").conditions, "Ready")
        .map(|c| c.status.clone());
    let expected_ready = if every_service_ready { "True" } else { "False" };
    assert_eq!(
        ready.as_deref(),
        Some(expected_ready),
        "{:?}",
        object.status
    );

    // 3. A reconcile that has nothing to change writes nothing. First wait
    // until nothing moves (the controller-manager is still writing
    // Deployment and PDB status as pods turn ready), then poke the Event.
    let (quiet, count) = eventually(
        "the Event and its children to stop changing",
        Duration::from_secs(60),
        || async {
            let before = versions(&client, &ns.name, &name).await?;
            let count = operator.reconciliations("event", "ok").await?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let after = versions(&client, &ns.name, &name).await?;
            let count_after = operator.reconciliations("event", "ok").await?;
            if before == after && count == count_after {
                Ok((after, count))
            } else {
                Err(format!(
                    "{before:?} became {after:?}, reconciles {count} became {count_after}"
                ))
            }
        },
    )
    .await;
    assert_eq!(quiet.len(), 13, "twelve children and the Event: {quiet:?}");
    let poked = events
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"urr.dev/test-poke": "1"}}})),
        )
        .await
        .expect("annotating the Event");
    let mut expected = quiet.clone();
    versions_of(vec![poked], &mut expected);
    eventually(
        "a reconcile of the annotated Event",
        Duration::from_secs(20),
        || async {
            let now = operator.reconciliations("event", "ok").await?;
            if now > count {
                Ok(())
            } else {
                Err(format!("{now} ok reconciles, {count} before the poke"))
            }
        },
    )
    .await;
    let after = versions(&client, &ns.name, &name)
        .await
        .expect("reading the versions");
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let mut changed = Vec::new();
    for (key, now) in &after {
        let before = &expected[key];
        if now == before {
            continue;
        }
        let status_only = (key.starts_with("Deployment/")
            || key.starts_with("PodDisruptionBudget/"))
            && now.generation == before.generation
            && now.operator_fields == before.operator_fields;
        if status_only {
            // The controller-manager's status write (pods set not Ready by
            // the stack, see service_state), not the operator's.
            println!("note: {key} written meanwhile, not by the operator");
        } else {
            changed.push(format!("{key}: {before:?} -> {now:?}"));
        }
    }
    assert!(
        changed.is_empty(),
        "a reconcile with nothing to change wrote: {changed:?}"
    );

    // 4. A hand edit of fields the operator owns is repaired.
    let queue = format!("{name}-queue");
    let original = deployments.get(&queue).await.expect("the queue Deployment");
    let original_image = original
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].image.clone())
        .expect("an image");
    let edited = deployments
        .patch(
            &queue,
            &PatchParams {
                field_manager: Some("hand-edit".to_owned()),
                ..PatchParams::default()
            },
            &Patch::Strategic(json!({"spec": {"replicas": 7, "template": {"spec": {
                "containers": [{"name": "queue", "image": "registry.invalid/hand-edited:1"}]
            }}}})),
        )
        .await
        .expect("hand-editing the queue Deployment");
    assert_eq!(edited.spec.as_ref().and_then(|s| s.replicas), Some(7));
    eventually(
        "the hand edit of the queue Deployment repaired",
        Duration::from_secs(30),
        || async {
            let now = deployments.get(&queue).await.map_err(|e| e.to_string())?;
            let spec = now.spec.as_ref();
            let image = spec
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.containers[0].image.clone());
            let replicas = spec.and_then(|s| s.replicas);
            if image.as_deref() == Some(original_image.as_str()) && replicas == Some(2) {
                Ok(())
            } else {
                Err(format!("image {image:?}, replicas {replicas:?}"))
            }
        },
    )
    .await;

    // 5. A spec change rewrites the ConfigMaps and rolls every Deployment.
    let mut hashes = BTreeMap::new();
    for service in SERVICES {
        let deployment = deployments
            .get(&format!("{name}-{service}"))
            .await
            .expect("a Deployment");
        hashes.insert(service, config_hash(&deployment).expect("a config hash"));
    }
    let new_name = "AURORA World Tour 2026 - Seoul (extra night)";
    events
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"displayName": new_name}})),
        )
        .await
        .expect("changing the display name");
    eventually(
        "new settings in every ConfigMap and a new config hash on every pod template",
        Duration::from_secs(30),
        || async {
            for service in SERVICES {
                let child = format!("{name}-{service}");
                let config = config_maps.get(&child).await.map_err(|e| e.to_string())?;
                let shown = display_name_of(&config);
                if shown.as_deref() != Some(new_name) {
                    return Err(format!("ConfigMap {child} has displayName {shown:?}"));
                }
                let deployment = deployments.get(&child).await.map_err(|e| e.to_string())?;
                let hash = config_hash(&deployment);
                if hash.as_deref() == Some(hashes[service].as_str()) || hash.is_none() {
                    return Err(format!("Deployment {child} still has config hash {hash:?}"));
                }
            }
            Ok(())
        },
    )
    .await;
    // The rolled pods (a new ReplicaSet each) turn ready in the status too.
    settled(
        &client,
        &ns.name,
        &name,
        EventPhase::Scheduled,
        [2, 2, 2],
        Duration::from_secs(60),
    )
    .await;

    // 6. Deleting the Event: the controller-manager's garbage collector
    // removes every child through its owner reference.
    events
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the Event");
    eventually(
        "the Event and its children gone",
        Duration::from_secs(60),
        || async {
            if events
                .get_opt(&name)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Err("the Event is still there".to_owned());
            }
            let left = child_versions(&client, &ns.name, &name).await?;
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("left: {:?}", left.keys().collect::<Vec<_>>()))
            }
        },
    )
    .await;
    operator.assert_running();
}

/// The clock: a sale opening in seconds is Scheduled at `replicas.min`,
/// Prewarming at `prewarm.replicas` from `salesOpenAt - leadSeconds`, and
/// OnSale from `salesOpenAt`, keeping the pre-warm scale while the queue's
/// stats cannot be read (Degraded says so).
#[tokio::test]
async fn an_event_opening_in_seconds_prewarms_then_goes_on_sale_on_time() {
    const LEAD: u32 = 20;
    const PREWARM: [i32; 3] = [3, 3, 2];
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-prewarm").await;
    create_secrets(&client, &ns.name, &redis_url(random_db())).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    // Set once the operator is up, so the window before the pre-warm is
    // the operator's alone (20 s for a first reconcile).
    let open = Timestamp::now().as_second() + 40;
    let prewarm_at = open - i64::from(LEAD);
    let mut event = example_event("flash-prewarm", open);
    let services = &mut event.spec.services;
    for (runtime, replicas) in [
        &mut services.queue,
        &mut services.ticket,
        &mut services.payment,
    ]
    .into_iter()
    .zip(PREWARM)
    {
        runtime.replicas.min = 1;
        runtime.replicas.max = 6;
        runtime.prewarm = Some(Prewarm {
            replicas,
            lead_seconds: LEAD,
        });
    }
    let name = event.name_any();
    events
        .create(&PostParams::default(), &event)
        .await
        .expect("creating the Event");
    let until = |second: i64| {
        Duration::from_secs(u64::try_from(second - Timestamp::now().as_second()).unwrap_or(0))
    };

    // Before the boundary: Scheduled, at min.
    eventually(
        "Scheduled at replicas.min before the pre-warm",
        until(prewarm_at - 1),
        || async {
            let object = events.get(&name).await.map_err(|e| e.to_string())?;
            let replicas = deployment_replicas(&client, &ns.name, &name).await?;
            match phase_and_services(&object) {
                (Some(EventPhase::Scheduled), Some(services))
                    if replicas == [1, 1, 1] && services.iter().all(|s| s.0 == 1) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}, Deployments {replicas:?}")),
            }
        },
    )
    .await;

    // The pre-warm: the operator's own requeue at the boundary, no watch
    // event, moves it.
    settled(
        &client,
        &ns.name,
        &name,
        EventPhase::Prewarming,
        PREWARM,
        until(prewarm_at + 20),
    )
    .await;
    assert!(
        Timestamp::now().as_second() >= prewarm_at,
        "Prewarming seen before salesOpenAt - leadSeconds"
    );

    // The opening.
    let on_sale = settled(
        &client,
        &ns.name,
        &name,
        EventPhase::OnSale,
        PREWARM,
        until(open + 20),
    )
    .await;
    assert!(
        Timestamp::now().as_second() >= open,
        "OnSale seen before salesOpenAt"
    );
    let degraded = condition(
        &on_sale.status.as_ref().expect("status").conditions,
        "Degraded",
    )
    .map(|c| (c.status.clone(), c.reason.clone()));
    assert_eq!(
        degraded,
        Some(("True".to_owned(), "StatsUnavailable".to_owned())),
        "no queue stats on sale (kwok's pods serve nothing): Degraded"
    );

    operator.assert_running();
}

/// Every phase change is announced as a Kubernetes Event, each with its own
/// note (`kubectl describe event.urr.dev` is how an operator of a sale sees
/// the pre-warm start and the opening).
#[tokio::test]
async fn every_phase_change_is_announced_as_its_own_kubernetes_event() {
    const LEAD: u32 = 4;
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-announce").await;
    create_secrets(&client, &ns.name, &redis_url(random_db())).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    let open = Timestamp::now().as_second() + 8;
    let mut event = example_event("flash-announce", open);
    let services = &mut event.spec.services;
    for runtime in [
        &mut services.queue,
        &mut services.ticket,
        &mut services.payment,
    ] {
        runtime.replicas.min = 1;
        runtime.replicas.max = 2;
        runtime.prewarm = Some(Prewarm {
            replicas: 2,
            lead_seconds: LEAD,
        });
    }
    Api::<Event>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &event)
        .await
        .expect("creating the Event");
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    eventually("OnSale", Duration::from_secs(30), || async {
        let object = events
            .get("flash-announce")
            .await
            .map_err(|e| e.to_string())?;
        match phase_and_services(&object).0 {
            Some(EventPhase::OnSale) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let kube_events: Api<KubeEvent> = Api::namespaced(client.clone(), &ns.name);
    eventually(
        "a PhaseChanged event per phase change",
        Duration::from_secs(15),
        || async {
            let announced: Vec<(Option<String>, Option<i32>)> = kube_events
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("PhaseChanged"))
                .map(|e| (e.note, e.series.map(|s| s.count)))
                .collect();
            let wanted = [
                "new → Scheduled",
                "Scheduled → Prewarming",
                "Prewarming → OnSale",
            ];
            if wanted.iter().all(|w| {
                announced
                    .iter()
                    .any(|(note, _)| note.as_deref() == Some(*w))
            }) {
                Ok(())
            } else {
                Err(format!("(note, series count): {announced:?}"))
            }
        },
    )
    .await;
    operator.assert_running();
}

/// The room's Redis policy and serving hashes, as the queue service would read them.
async fn redis_hashes(
    url: &str,
    event: &str,
) -> (HashMap<String, String>, HashMap<String, String>) {
    let client = redis::Client::open(url).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("connecting to Redis at {url}: {e}"));
    let policy: HashMap<String, String> = conn
        .hgetall(policy::policy_key(event))
        .await
        .expect("HGETALL policy");
    let serving: HashMap<String, String> = conn
        .hgetall(policy::serving_key(event))
        .await
        .expect("HGETALL serving");
    (policy, serving)
}

/// A WaitingRoom: finalizer, policy in the Event's Redis, entry at the edge,
/// conditions; deleting it removes entry and policy before the object goes.
#[tokio::test]
async fn a_waiting_room_publishes_policy_and_edge_entry_and_removes_both_on_delete() {
    let client = admin().await;
    install_crds(&client).await;
    // The example's store, by name: the operator resolves it through
    // CloudFront's control plane.
    let store_arn = ensure_store("urr-edge").await;
    let kvs = KvsWriter::new(store_arn, Some(&stack_env("URR_KVS_ENDPOINT"))).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-room").await;
    let redis = redis_url(random_db());
    create_secrets(&client, &ns.name, &redis).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    // A fresh event name: the policy key is per event, so no earlier run's
    // hash in the same Redis database can pass for this one's.
    let name = format!("aurora-{}", suffix());
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let rooms: Api<WaitingRoom> = Api::namespaced(client.clone(), &ns.name);
    events
        .create(&PostParams::default(), &example_event(&name, far_future()))
        .await
        .expect("creating the Event");
    let (policy_before, _) = redis_hashes(&redis, &name).await;
    assert!(policy_before.is_empty(), "{policy_before:?}");
    rooms
        .create(&PostParams::default(), &example_room_on(&name, "urr-edge"))
        .await
        .expect("the API server accepts the example WaitingRoom");

    eventually("the finalizer", Duration::from_secs(30), || async {
        let room = rooms.get(&name).await.map_err(|e| e.to_string())?;
        if room
            .finalizers()
            .iter()
            .any(|f| f == "urr.dev/waiting-room")
        {
            Ok(())
        } else {
            Err(format!("finalizers {:?}", room.finalizers()))
        }
    })
    .await;
    eventually(
        "EdgeSynced and Ready True",
        Duration::from_secs(60),
        || async {
            let room = rooms.get(&name).await.map_err(|e| e.to_string())?;
            let conditions = room.status.map(|s| s.conditions).unwrap_or_default();
            let status_of = |type_| condition(&conditions, type_).map(|c| c.status.as_str());
            if status_of("EdgeSynced") == Some("True") && status_of("Ready") == Some("True") {
                Ok(())
            } else {
                Err(format!("{conditions:?}"))
            }
        },
    )
    .await;

    // A synced room is left alone: no reconcile rewrites its status (each
    // write would be a watch event, and the next reconcile another write).
    eventually(
        "the room's resourceVersion to hold for 3 s",
        Duration::from_secs(20),
        || async {
            let before = rooms.get(&name).await.map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let after = rooms.get(&name).await.map_err(|e| e.to_string())?;
            if before.resource_version() == after.resource_version() {
                Ok(())
            } else {
                Err(format!(
                    "{:?} became {:?}: status {:?}",
                    before.resource_version(),
                    after.resource_version(),
                    after.status
                ))
            }
        },
    )
    .await;

    let (policy, serving) = redis_hashes(&redis, &name).await;
    for (field, value) in [
        ("usersPerSecond", "200"),
        ("maxActiveUsers", "1000"),
        ("entryTokenTtlSeconds", "600"),
        ("randomizeAtOpen", "1"),
    ] {
        assert_eq!(
            policy.get(field).map(String::as_str),
            Some(value),
            "policy field {field}: {policy:?}"
        );
    }
    let open = events
        .get(&name)
        .await
        .expect("the Event")
        .spec
        .sales_open_at
        .0
        .as_second();
    assert_eq!(policy.get("salesOpenAt"), Some(&open.to_string()));
    assert_eq!(
        policy.get("preQueueOpensAt"),
        Some(&(open - 30 * 60).to_string())
    );
    assert_eq!(
        serving.get("perInterval").map(String::as_str),
        Some("500"),
        "{serving:?}"
    );

    let room_key = format!("wr/{}/{name}", ns.name);
    let entry: Value = serde_json::from_str(
        &kvs.get(&room_key)
            .await
            .expect("reading the store")
            .unwrap_or_else(|| panic!("no {room_key} in the store")),
    )
    .expect("the entry is JSON");
    assert_eq!(entry["room"], json!(format!("{}/{name}", ns.name)));
    let kid = key_id(&name);
    assert_eq!(entry["kids"], json!([kid]));
    // Chained tiers: the queue asks for a served pass exactly while the edge gates.
    let pass_required_from = if entry["active"] == json!(true) {
        entry["enforceFrom"].as_i64().unwrap_or_default().max(1)
    } else {
        0
    };
    assert_eq!(
        policy.get("passRequiredFrom"),
        Some(&pass_required_from.to_string()),
        "{policy:?} against {entry}"
    );
    assert_eq!(
        entry["protected"],
        json!([format!("/events/{name}"), format!("/api/v1/events/{name}")])
    );
    assert_eq!(
        kvs.get(&format!("key/{}/{name}/{kid}", ns.name))
            .await
            .expect("reading the store"),
        Some(hex::encode(SIGNING_KEY.as_bytes())),
        "the signing key published for this room only, under its id"
    );

    // The Event controller is woken by the room and wires its queue to it.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    eventually(
        "the queue ConfigMap wired to the room",
        Duration::from_secs(30),
        || async {
            let config = config_maps
                .get(&format!("{name}-queue"))
                .await
                .map_err(|e| e.to_string())?;
            let mut data = config.data.unwrap_or_default();
            let wired = (data.remove("URR_ROOM_ID"), data.remove("URR_VWR_KEY_ID"));
            if wired == (Some(format!("{}/{name}", ns.name)), Some(kid.clone())) {
                Ok(())
            } else {
                Err(format!("URR_ROOM_ID, URR_VWR_KEY_ID: {wired:?}"))
            }
        },
    )
    .await;

    // Deletion: the entry and the policy go, then the finalizer, then the object.
    rooms
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the room");
    eventually("the room gone", Duration::from_secs(30), || async {
        match rooms.get_opt(&name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(room) => Err(format!(
                "still there: finalizers {:?}, status {:?}",
                room.finalizers(),
                room.status
            )),
        }
    })
    .await;
    assert_eq!(
        kvs.get(&room_key).await.expect("reading the store"),
        None,
        "the room's entry is gone from the edge before its object"
    );
    let (policy, serving) = redis_hashes(&redis, &name).await;
    assert!(
        policy.is_empty() && serving.is_empty(),
        "the policy is gone before the object: {policy:?} {serving:?}"
    );
    assert_eq!(
        kvs.get(&format!("key/{}/{name}/{kid}", ns.name))
            .await
            .expect("reading the store"),
        None,
        "the room's key leaves with the room"
    );
    operator.assert_running();
}

/// A room whose store cannot be reached keeps its object (and finalizer) on
/// deletion, with `CleanupPending`; once the store is there, it goes.
#[tokio::test]
async fn a_room_whose_store_is_unreachable_waits_on_delete_and_says_cleanup_pending() {
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-pending").await;
    create_secrets(&client, &ns.name, &redis_url(random_db())).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    let name = format!("aurora-{}", suffix());
    // No store of that name exists in the emulator: resolving it fails.
    let store = format!("urr-missing-{}", suffix());
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let rooms: Api<WaitingRoom> = Api::namespaced(client.clone(), &ns.name);
    events
        .create(&PostParams::default(), &example_event(&name, far_future()))
        .await
        .expect("creating the Event");
    rooms
        .create(&PostParams::default(), &example_room_on(&name, &store))
        .await
        .expect("creating the room");

    let reason_of = |room: &WaitingRoom, type_: &str| {
        room.status
            .as_ref()
            .and_then(|s| condition(&s.conditions, type_))
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    eventually(
        "the finalizer and EdgeSynced False (PublishFailed)",
        Duration::from_secs(30),
        || async {
            let room = rooms.get(&name).await.map_err(|e| e.to_string())?;
            let synced = reason_of(&room, "EdgeSynced");
            let has_finalizer = room
                .finalizers()
                .iter()
                .any(|f| f == "urr.dev/waiting-room");
            if has_finalizer && synced == Some(("False".to_owned(), "PublishFailed".to_owned())) {
                Ok(())
            } else {
                Err(format!(
                    "finalizers {:?}, EdgeSynced {synced:?}",
                    room.finalizers()
                ))
            }
        },
    )
    .await;

    rooms
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the room");
    eventually("CleanupPending", Duration::from_secs(30), || async {
        let room = rooms
            .get_opt(&name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the room is gone: its edge entry was never removed")?;
        let synced = reason_of(&room, "EdgeSynced");
        if room.metadata.deletion_timestamp.is_some()
            && synced == Some(("False".to_owned(), "CleanupPending".to_owned()))
        {
            Ok(())
        } else {
            Err(format!("EdgeSynced {synced:?}"))
        }
    })
    .await;
    // Past a retry (10 s), it still waits.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let room = rooms
        .get_opt(&name)
        .await
        .expect("reading the room")
        .expect("the room waits for its cleanup");
    assert!(
        room.finalizers()
            .iter()
            .any(|f| f == "urr.dev/waiting-room"),
        "{:?}",
        room.finalizers()
    );

    // The store appears: the next retry cleans up and the object goes.
    ensure_store(&store).await;
    let gone = async {
        eventually(
            "the room gone once its store exists",
            Duration::from_secs(40),
            || async {
                match rooms.get_opt(&name).await.map_err(|e| e.to_string())? {
                    None => Ok(()),
                    Some(room) => Err(format!("{:?}", room.status.map(|s| s.conditions))),
                }
            },
        )
        .await;
    };
    // The throwaway store is removed whatever the outcome.
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(gone)).await;
    delete_store(&store).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    operator.assert_running();
}

/// Two replicas on the chart's Lease: one leads, the other takes over after
/// a `kill -9` within the lease duration, and reconciles.
#[tokio::test]
async fn one_of_two_replicas_leads_and_the_other_takes_over_when_it_is_killed() {
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-leader").await;
    create_secrets(&client, &ns.name, &redis_url(random_db())).await;
    let mut a = Operator::spawn(&release, &ns.name, "a");
    let mut b = Operator::spawn(&release, &ns.name, "b");
    a.wait_ready().await;
    b.wait_ready().await;

    let exactly_one = || async {
        match (a.leading().await?, b.leading().await?) {
            (true, false) => Ok(true),
            (false, true) => Ok(false),
            other => Err(format!("a, b leading: {other:?}")),
        }
    };
    let a_leads = eventually("exactly one leader", Duration::from_secs(30), exactly_one).await;
    // And it stays that way (no flapping, no second leader on a later try:
    // the standby retries every 5 s).
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(exactly_one().await, Ok(a_leads), "leadership changed");
    }
    let (mut leader, standby) = if a_leads { (a, b) } else { (b, a) };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &release.namespace);
    let holder = |leases: Api<Lease>, name: String| async move {
        leases
            .get(&name)
            .await
            .map(|l| l.spec.and_then(|s| s.holder_identity))
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        holder(leases.clone(), release.fullname.clone()).await,
        Ok(Some(leader.identity.clone())),
        "the chart's Lease names the leader"
    );

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let first = events
        .create(
            &PostParams::default(),
            &example_event("before-failover", far_future()),
        )
        .await
        .expect("creating an Event");
    let first_uid = first.uid().expect("a uid");
    eventually(
        "the leader reconciles an Event",
        Duration::from_secs(60),
        || twelve_children(&client, &ns.name, "before-failover", &first_uid),
    )
    .await;

    leader.kill();
    let killed = Instant::now();
    eventually(
        "the standby to take over",
        Duration::from_secs(40),
        || async {
            match standby.leading().await? {
                true => Ok(()),
                false => Err("still standby".to_owned()),
            }
        },
    )
    .await;
    let took = killed.elapsed();
    println!("takeover {took:?} after kill -9 (lease 15 s, standby retries every 5 s)");
    assert_eq!(
        holder(leases, release.fullname.clone()).await,
        Ok(Some(standby.identity.clone())),
        "the Lease names the new leader"
    );

    let second = events
        .create(
            &PostParams::default(),
            &example_event("after-failover", far_future()),
        )
        .await
        .expect("creating an Event");
    let second_uid = second.uid().expect("a uid");
    eventually(
        "the new leader reconciles a new Event",
        Duration::from_secs(60),
        || twelve_children(&client, &ns.name, "after-failover", &second_uid),
    )
    .await;
    let count = standby
        .reconciliations("event", "ok")
        .await
        .expect("the new leader's metrics");
    assert!(count > 0, "the new leader counted no reconcile");
    let mut standby = standby;
    standby.assert_running();
    // Kept to the end, so the killed leader's log prints too on a failure.
    drop(leader);
}
