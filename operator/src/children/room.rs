//! The WaitingRoom in front of an Event, as the Event's queue service needs it.

use urr_crds::{Event, SecretKeyRef, WaitingRoom};

/// The WaitingRoom in front of an Event, as its queue service needs it: the
/// room's name (its `/v1/rooms/{room}` routes and waiting page), its id
/// `<namespace>/<name>` (signed into every `urr-vwr-token` and compared by the
/// edge with the room's KeyValueStore entry) and the key passes are signed
/// with (the same Secret and key id the WaitingRoom controller publishes to
/// the edge). Wired by the Event controller, so the two can never disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRoom {
    pub name: String,
    pub id: String,
    /// `spec.edge`: the signing key and its id; `None` without an edge gate.
    pub signing: Option<(SecretKeyRef, String)>,
    /// `spec.edge.previousSigningKey`, during a rotation: the queue still
    /// accepts passes signed with it.
    pub previous_signing: Option<(SecretKeyRef, String)>,
    /// `spec.edge.passTtlSeconds`: how long the passes the queue signs live
    /// (the operator retires a rotated-out key after as long).
    pub pass_ttl_seconds: Option<u32>,
}

impl QueueRoom {
    /// The room of `room`, when it names `event` (same namespace).
    pub fn of(room: &WaitingRoom, event: &Event) -> Option<Self> {
        let namespace = room.metadata.namespace.as_deref()?;
        let name = room.metadata.name.as_deref()?;
        if event.metadata.namespace.as_deref() != Some(namespace)
            || event.metadata.name.as_deref() != Some(room.spec.event_ref.name.as_str())
        {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            id: format!("{namespace}/{name}"),
            signing: room
                .spec
                .edge
                .as_ref()
                .map(|edge| (edge.signing_key_ref.clone(), edge.signing_key_id.clone())),
            previous_signing: room
                .spec
                .edge
                .as_ref()
                .and_then(|edge| edge.previous_signing_key.as_ref())
                .map(|previous| (previous.key_ref.clone(), previous.id.clone())),
            pass_ttl_seconds: room.spec.edge.as_ref().map(|edge| edge.pass_ttl_seconds),
        })
    }

    /// The room of `event` among `rooms`: the first by name when several
    /// name it (the WaitingRoom controller reports the others as conflicting).
    pub fn find<'a>(
        rooms: impl IntoIterator<Item = &'a WaitingRoom>,
        event: &Event,
    ) -> Option<Self> {
        rooms
            .into_iter()
            .filter(|room| room.metadata.deletion_timestamp.is_none())
            .filter_map(|room| Self::of(room, event))
            .min_by(|a, b| a.name.cmp(&b.name))
    }
}
