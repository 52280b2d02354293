//! The reconcile's edge step: the room's signing keys from their Secrets
//! (refused under 32 bytes), the kids its entry accepts through a rotation
//! ([`keys`]), the publication ([`publish`]), and what the status says of it.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use urr_crds::conditions;
use urr_crds::limits::MIN_SIGNING_KEY_BYTES;
use urr_crds::waiting_room::{Edge, EdgeSync, WaitingRoomStatus};

use super::keys::{self, AcceptedKeys};
use super::publish::{self, Outcome, Publication};
use super::status::set;
use super::{Error, RETRY, RoomContext};
use crate::edge::{self, EdgeEntry};

/// How the edge step ended.
#[derive(Debug)]
pub enum EdgeOutcome {
    Published {
        /// The store's ETag when something was written; `None`: already so.
        etag: Option<String>,
        keys: AcceptedKeys,
    },
    /// Not published, for a reason the spec or its Secrets must fix.
    Refused {
        reason: &'static str,
        message: String,
    },
    Failed(Error),
}

/// Publishes `entry` (its `kids` filled in here) for the room.
pub async fn publish_edge(
    ctx: &RoomContext,
    namespace: &str,
    name: &str,
    spec: &Edge,
    mut entry: EdgeEntry,
    previous: &WaitingRoomStatus,
    now: Timestamp,
) -> EdgeOutcome {
    let written: &[String] = previous
        .edge_sync
        .as_ref()
        .map_or(&[], |sync| sync.signing_key_ids.as_slice());
    let accepted = keys::accepted(spec, written, &previous.retired_signing_keys, now);
    entry.kids = accepted.kids.clone();
    let named = std::iter::once((
        "spec.edge.signingKeyRef",
        &spec.signing_key_ref,
        &spec.signing_key_id,
    ))
    .chain(
        spec.previous_signing_key
            .iter()
            .map(|p| ("spec.edge.previousSigningKey.keyRef", &p.key_ref, &p.id)),
    );
    let writer = match ctx.writer(spec).await {
        Ok(writer) => writer,
        Err(error) => return EdgeOutcome::Failed(error),
    };
    let mut key_values = Vec::new();
    for (field, reference, kid) in named {
        let bytes = match ctx.secret(namespace, reference).await {
            Ok(bytes) => bytes,
            Err(error) => return EdgeOutcome::Failed(error),
        };
        if bytes.len() < MIN_SIGNING_KEY_BYTES {
            // The length only: never the value.
            return EdgeOutcome::Refused {
                reason: conditions::REASON_WEAK_SIGNING_KEY,
                message: format!(
                    "the signing key in Secret {} key {} ({field}) is {} bytes; HMAC-SHA256 keys need at least {MIN_SIGNING_KEY_BYTES} (e.g. `openssl rand -hex 32`)",
                    reference.name,
                    reference.key,
                    bytes.len()
                ),
            };
        }
        key_values.push((kid.clone(), hex::encode(&bytes)));
    }
    let publication = Publication {
        room_key: edge::room_key(namespace, name),
        room_id: entry.room.clone(),
        entry: Some(entry),
        keys: key_values,
    };
    match publish::publish(&writer, &publication).await {
        Ok(Outcome::Written { etag }) => EdgeOutcome::Published {
            etag: Some(etag),
            keys: accepted,
        },
        Ok(Outcome::Unchanged) => EdgeOutcome::Published {
            etag: None,
            keys: accepted,
        },
        Ok(Outcome::PathConflict(conflict)) => EdgeOutcome::Refused {
            reason: conditions::REASON_PATH_CONFLICT,
            message: conflict.to_string(),
        },
        Err(error) => EdgeOutcome::Failed(error),
    }
}

/// Records the outcome in `status`; returns when to come back, if sooner
/// than the activation asks.
pub fn record_edge(
    status: &mut WaitingRoomStatus,
    outcome: EdgeOutcome,
    generation: Option<i64>,
    now: &Time,
) -> Option<Duration> {
    match outcome {
        EdgeOutcome::Published { etag, keys } => {
            // Only a write moves the sync record: a reconcile that finds the
            // edge as it should be writes neither the store nor the status
            // (each status write is a watch event, and a fresh time in it
            // reconciled the room again, once a second).
            let last = status.edge_sync.clone().unwrap_or_default();
            if etag.is_some()
                || last.synced_generation != generation
                || last.signing_key_ids != keys.kids
            {
                status.edge_sync = Some(EdgeSync {
                    etag: etag.or(last.etag),
                    synced_generation: generation,
                    last_sync_time: Some(now.clone()),
                    signing_key_ids: keys.kids.clone(),
                });
            }
            status.retired_signing_keys = keys.retired;
            set(
                status,
                conditions::EDGE_SYNCED,
                true,
                "Published",
                "the room's entry is in the KeyValueStore",
                generation,
                now,
            );
            keys.next_expiry.map(|at| until(at, now))
        }
        EdgeOutcome::Refused { reason, message } => {
            set(
                status,
                conditions::EDGE_SYNCED,
                false,
                reason,
                message,
                generation,
                now,
            );
            Some(RETRY)
        }
        EdgeOutcome::Failed(error) => {
            set(
                status,
                conditions::EDGE_SYNCED,
                false,
                "PublishFailed",
                error.to_string(),
                generation,
                now,
            );
            Some(RETRY)
        }
    }
}

fn until(at: Timestamp, now: &Time) -> Duration {
    let seconds = at.as_second().saturating_sub(now.0.as_second()).max(1);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(1))
}
