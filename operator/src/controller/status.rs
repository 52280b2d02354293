//! Step 5, **status**: phase, conditions, replicas, seats and queue depth,
//! assembled without a client and written with server-side apply on the
//! status subresource only when it changed; a Kubernetes Event on every
//! phase change and on a refused spec.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::api::{Api, Patch};
use kube::runtime::events::{Event as KubeEvent, EventType};
use serde_json::json;
use urr_crds::conditions::{self, Status};
use urr_crds::event::{EventStatus, ServicesStatus};
use urr_crds::validation::InvalidSpec;
use urr_crds::{Event, EventPhase};

use super::apply::apply_params;
use super::read::{Observed, Target};
use super::{Context, Error};

/// The status of an Event whose spec is refused.
pub(super) fn invalid(
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

/// The status of a reconciled Event: what was observed and what the
/// Deployments report.
pub(super) fn running(
    target: &Target,
    observed: &Observed,
    services: ServicesStatus,
) -> EventStatus {
    let (previous, generation, phase) = (&target.previous, target.generation, observed.phase);
    let now = Time(target.now);
    let all = [services.queue, services.ticket, services.payment];
    let all_ready = all.iter().all(|s| s.ready >= 1);
    let settled = all.iter().all(|s| s.ready == s.desired);
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.phase = Some(phase);
    status.services = Some(services);
    status.seats = observed.seats;
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
            now.clone(),
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
            now.clone(),
        ),
    );
    let (degraded_status, degraded_reason, degraded_message) = if observed.degraded {
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
            now,
        ),
    );
    status
}

/// Reports a refused spec: the status once, and a warning Event with it.
pub(super) async fn refuse(
    ctx: &Context,
    event: &Event,
    target: &Target,
    refused: &InvalidSpec,
) -> Result<(), Error> {
    let status = invalid(
        &target.previous,
        target.generation,
        refused,
        Time(target.now),
    );
    if status != target.previous {
        write(ctx, target, &status).await?;
        publish(
            ctx,
            event,
            EventType::Warning,
            conditions::REASON_INVALID_SPEC,
            "Validate",
            refused.to_string(),
        )
        .await;
    }
    Ok(())
}

/// Writes `status` when it differs from the last one, and announces a phase
/// change.
pub(super) async fn report(
    ctx: &Context,
    event: &Event,
    target: &Target,
    status: &EventStatus,
    phase: EventPhase,
) -> Result<(), Error> {
    let previous = &target.previous;
    if *status != *previous {
        write(ctx, target, status).await?;
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
    Ok(())
}

async fn write(ctx: &Context, target: &Target, status: &EventStatus) -> Result<(), Error> {
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &target.namespace);
    let name = &target.name;
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
