//! The reading steps of a room's reconcile: the Event it names, and the
//! activation decided from the mode, the time and the queue's load (with
//! the drained-since memory the context keeps between reconciles).

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use urr_crds::waiting_room::WaitingRoomStatus;
use urr_crds::{Event, WaitingRoom};

use super::activation::{self, Activation};
use super::{Error, RoomContext};
use crate::stats::Observed;

/// The Event `room` names, if it exists.
pub(super) async fn event(
    ctx: &RoomContext,
    namespace: &str,
    room: &WaitingRoom,
) -> Result<Option<Event>, Error> {
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), namespace);
    let event_name = &room.spec.event_ref.name;
    events
        .get_opt(event_name)
        .await
        .map_err(|source| Error::Kube {
            what: format!("Event {event_name}"),
            source,
        })
}

/// Whether the room gates now, from the queue's load; what was read is
/// returned for the status.
pub(super) async fn decide(
    ctx: &RoomContext,
    namespace: &str,
    room: &WaitingRoom,
    previous: &WaitingRoomStatus,
    now: Timestamp,
) -> (Activation, Observed) {
    let name = room.name_any();
    let observed = ctx
        .stats
        .observe(namespace, &room.spec.event_ref.name)
        .await;
    let load = observed.load;
    let key = (namespace.to_owned(), name);
    let drained = ctx
        .drained
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .copied();
    let (activation, drained) = activation::decide(&room.spec, previous, now, load, drained);
    let mut map = ctx.drained.lock().unwrap_or_else(|p| p.into_inner());
    match drained {
        Some(since) => map.insert(key, since),
        None => map.remove(&key),
    };
    (activation, observed)
}
