//! The room's controls in its status (`spec.control`, `spec.queueing`,
//! `spec.inventory`): `status.admission`, `placesLeft`, `kickedUsers`, the
//! `Admitting` condition, and a Kubernetes Event for each change an
//! organiser should see in `kubectl describe` (admission paused, resumed,
//! drained, closed or sold out; users kicked; the block list changed).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::runtime::events::{Event as KubeEvent, EventType};
use urr_crds::WaitingRoom;
use urr_crds::conditions;
use urr_crds::waiting_room::{WaitingRoomSpec, WaitingRoomStatus};
use urr_service_common::admission::AdmissionState;
use urr_service_common::policy::Policy;

use super::RoomContext;
use super::status::set;
use crate::stats::RoomFigures;

/// Records the admission (the queue's figures when read, else what the
/// policy written this pass asks for: the queue's inventory is unknown
/// then) and the kicks written this pass.
pub(super) fn record(
    status: &mut WaitingRoomStatus,
    spec: &WaitingRoomSpec,
    policy: &Policy,
    figures: Option<RoomFigures>,
    generation: Option<i64>,
    now: &Time,
) {
    let admission = figures.map_or_else(|| AdmissionState::requested(policy), |f| f.admission);
    status.admission = Some(admission.reason().to_owned());
    status.places_left = figures
        .and_then(|f| f.places_left)
        .and_then(|p| i64::try_from(p).ok());
    status.kicked_users = spec.control.kick_users.clone();
    let message = match admission {
        AdmissionState::Open => format!("admitting ({})", policy.method.as_str()),
        AdmissionState::Paused => {
            "spec.control.paused: nobody is admitted, the line keeps its order".to_owned()
        }
        AdmissionState::Draining => {
            "spec.control.draining: nobody new joins or is admitted".to_owned()
        }
        AdmissionState::SoldOut => format!(
            "the ticket service has fewer than {} places left (spec.inventory.minPlaces); admission re-opens when places come back",
            spec.inventory.min_places
        ),
        AdmissionState::Closed => "spec.queueing.method Reject: the sale is closed".to_owned(),
    };
    set(
        status,
        conditions::ADMITTING,
        admission == AdmissionState::Open,
        admission.reason(),
        message,
        generation,
        now,
    );
}

/// One Kubernetes Event per change between `previous` and `status`.
pub(super) async fn announce(
    ctx: &RoomContext,
    room: &WaitingRoom,
    previous: &WaitingRoomStatus,
    status: &WaitingRoomStatus,
) {
    let Some(recorder) = &ctx.recorder else {
        return;
    };
    let mut events = Vec::new();
    if status.admission != previous.admission
        && let Some(admission) = &status.admission
    {
        let type_ = if admission == "Open" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        events.push((
            type_,
            format!("Admission{admission}"),
            format!("admission is now {admission}"),
        ));
    }
    let newly_kicked: Vec<&String> = status
        .kicked_users
        .iter()
        .filter(|u| !previous.kicked_users.contains(u))
        .collect();
    if !newly_kicked.is_empty() {
        events.push((
            EventType::Normal,
            "UsersKicked".to_owned(),
            format!("kicking {} user(s) from the room", newly_kicked.len()),
        ));
    }
    let reference = room.object_ref(&());
    for (type_, reason, note) in events {
        let event = KubeEvent {
            type_,
            action: reason.clone(),
            reason,
            note: Some(note),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::warn!(%error, "could not publish a Kubernetes event");
        }
    }
}
