//! The room's status: its conditions set one by one, the figures of the
//! last activation decision, and the write (server-side apply on the status
//! subresource, only when something changed).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use urr_crds::WaitingRoom;
use urr_crds::conditions::{self, Status};
use urr_crds::waiting_room::WaitingRoomStatus;

use super::Error;
use super::activation::Activation;
use super::validate::InvalidSpec;
use crate::children::FIELD_MANAGER;
use crate::scaling::Load;

/// Sets condition `type_` to `ok`, with its reason and message.
pub(super) fn set(
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

/// `Ready=False, InvalidSpec`: the pass stops until the spec is fixed.
pub(super) fn invalid_spec(
    status: &mut WaitingRoomStatus,
    invalid: InvalidSpec,
    generation: Option<i64>,
    now: &Time,
) {
    let reason = conditions::REASON_INVALID_SPEC;
    set(
        status,
        conditions::READY,
        false,
        reason,
        invalid.0,
        generation,
        now,
    );
}

/// `EventFound=False` and `Ready=False`, both `EventNotFound`: the room
/// waits for its Event.
pub(super) fn event_missing(
    status: &mut WaitingRoomStatus,
    namespace: &str,
    event_name: &str,
    generation: Option<i64>,
    now: &Time,
) {
    for (type_, message) in [
        (
            conditions::EVENT_FOUND,
            format!("no Event {event_name} in {namespace}"),
        ),
        (conditions::READY, "waiting for the Event".to_owned()),
    ] {
        set(
            status,
            type_,
            false,
            "EventNotFound",
            message,
            generation,
            now,
        );
    }
}

/// `EventFound=True`.
pub(super) fn event_found(status: &mut WaitingRoomStatus, generation: Option<i64>, now: &Time) {
    set(
        status,
        conditions::EVENT_FOUND,
        true,
        "EventFound",
        "",
        generation,
        now,
    );
}

/// The status after a completed pass: the activation, the load figures and
/// `Ready`, which carries a refusal the spec must fix as its own reason, so
/// `kubectl get` and a CD tool waiting on Ready see it without reading
/// EdgeSynced.
pub(super) fn settle(
    status: &mut WaitingRoomStatus,
    room: &WaitingRoom,
    activation: &Activation,
    load: Option<Load>,
    now: &Time,
) {
    let generation = room.metadata.generation;
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
        status,
        conditions::READY,
        edge_ok,
        &reason,
        message,
        generation,
        now,
    );
}

/// Writes `status` unless it is `previous`.
pub(super) async fn write_if_changed(
    api: &Api<WaitingRoom>,
    name: &str,
    status: &WaitingRoomStatus,
    previous: &WaitingRoomStatus,
) -> Result<(), Error> {
    if status == previous {
        return Ok(());
    }
    write(api, name, status).await
}

/// Writes `status`.
pub(super) async fn write(
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
