//! `urr-operator invite`: minting a room's invite and presale codes.
//!
//! A code is signed with the room's current signing key (the Secret
//! `spec.edge.signingKeyRef` names), the key the queue checks passes with and
//! the edge lists in the room's entry, so both can verify it and nobody
//! without the Secret can make one. Each code gets a random id (48 bits
//! after the prefix), so two mint runs never hand out the same code; the
//! queue lets each id in once.
//!
//! A code expires at `--ttl-seconds` from now or at the room's
//! `spec.invites.validUntil`, and never after the Event's `salesCloseAt`: a
//! TTL that would reach past either is refused, not cut short silently.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use rand::Rng;
use urr_crds::{Event, WaitingRoom};
use urr_service_common::tokens::invite::{self, BadCodeId, InviteMode};
use urr_service_common::tokens::key_length::MIN_KEY_BYTES;
use urr_service_common::tokens::vwr::VwrKey;

/// What to mint.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub namespace: String,
    pub room: String,
    pub count: u32,
    pub mode: InviteMode,
    /// Seconds from now; `None`: until the room's codes end.
    pub ttl_seconds: Option<u64>,
    /// Starts every code id (campaign, partner), at most 16 of `[A-Za-z0-9_-]`.
    pub prefix: String,
}

/// One code and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedCode {
    pub code_id: String,
    pub code: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The most codes one run mints.
pub const MAX_COUNT: u32 = 100_000;
const MAX_PREFIX_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no cluster to read the room from (kube config or service account): {0}")]
    NoCluster(#[source] kube::Error),
    #[error("reading {what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error(
        "WaitingRoom {room} has no spec.invites: it takes no codes (add spec.invites.validUntil)"
    )]
    NoInvites { room: String },
    #[error("WaitingRoom {room} has no spec.edge signing key to sign codes with")]
    NoSigningKey { room: String },
    #[error("Secret {name} has no key {key}")]
    SecretKey { name: String, key: String },
    #[error(
        "the signing key in Secret {name} is {bytes} bytes; at least {MIN_KEY_BYTES} are needed"
    )]
    WeakKey { name: String, bytes: usize },
    #[error("the room's codes are no longer valid (they ended at {until})")]
    Ended { until: Timestamp },
    #[error(
        "--ttl-seconds {ttl} would reach {asked}, past {until} ({why}); shorten it or leave it out to mint until then"
    )]
    PastTheEnd {
        ttl: u64,
        asked: Timestamp,
        until: Timestamp,
        why: &'static str,
    },
    #[error("--count must be 1 to {MAX_COUNT}, got {0}")]
    Count(u32),
    #[error("--prefix is at most {MAX_PREFIX_LEN} of A-Z, a-z, 0-9, '-' and '_'; got {0:?}")]
    Prefix(String),
    #[error(transparent)]
    CodeId(#[from] BadCodeId),
}

/// When the codes may last to, and why: the room's `validUntil`, or the
/// Event's close if earlier.
pub fn codes_end(room: &WaitingRoom, event: &Event) -> Option<(Timestamp, &'static str)> {
    let invites = room.spec.invites.as_ref()?;
    let close = event.spec.sales_close_at.0;
    Some(if invites.valid_until.0 <= close {
        (invites.valid_until.0, "the room's spec.invites.validUntil")
    } else {
        (close, "the Event's salesCloseAt")
    })
}

/// Mints `request.count` codes with `key` for `room_id`, at `now`. Pure
/// but for the random ids.
pub fn mint_with(
    key: &VwrKey,
    room_id: &str,
    request: &MintRequest,
    end: (Timestamp, &'static str),
    now: Timestamp,
) -> Result<Vec<MintedCode>, MintError> {
    if request.count == 0 || request.count > MAX_COUNT {
        return Err(MintError::Count(request.count));
    }
    let prefix_ok = request.prefix.len() <= MAX_PREFIX_LEN
        && request
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !prefix_ok {
        return Err(MintError::Prefix(request.prefix.clone()));
    }
    let (until, why) = end;
    if until <= now {
        return Err(MintError::Ended { until });
    }
    let expires_at = match request.ttl_seconds {
        None => until.as_second(),
        Some(ttl) => {
            let asked = now
                .as_second()
                .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
            if asked > until.as_second() {
                return Err(MintError::PastTheEnd {
                    ttl,
                    asked: Timestamp::from_second(asked).unwrap_or(Timestamp::MAX),
                    until,
                    why,
                });
            }
            asked
        }
    };
    let mut rng = rand::rng();
    (0..request.count)
        .map(|_| {
            let code_id = format!("{}{:012x}", request.prefix, rng.random::<u64>() >> 16);
            let code = invite::sign(key, room_id, &code_id, request.mode, expires_at)?;
            Ok(MintedCode {
                code_id,
                code,
                expires_at,
            })
        })
        .collect()
}

/// Reads the room, its Event and its signing key from the cluster, then
/// mints.
pub async fn mint(client: &Client, request: &MintRequest) -> Result<Vec<MintedCode>, MintError> {
    let kube = |what: String| move |source| MintError::Kube { what, source };
    let ns = &request.namespace;
    let room = Api::<WaitingRoom>::namespaced(client.clone(), ns)
        .get(&request.room)
        .await
        .map_err(kube(format!("WaitingRoom {ns}/{}", request.room)))?;
    let event_name = &room.spec.event_ref.name;
    let event = Api::<Event>::namespaced(client.clone(), ns)
        .get(event_name)
        .await
        .map_err(kube(format!("Event {ns}/{event_name}")))?;
    let end = codes_end(&room, &event).ok_or_else(|| MintError::NoInvites {
        room: request.room.clone(),
    })?;
    let edge = room
        .spec
        .edge
        .as_ref()
        .ok_or_else(|| MintError::NoSigningKey {
            room: request.room.clone(),
        })?;
    let reference = &edge.signing_key_ref;
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get(&reference.name)
        .await
        .map_err(kube(format!("Secret {ns}/{}", reference.name)))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(&reference.key))
        .map(|value| value.0.clone())
        .ok_or_else(|| MintError::SecretKey {
            name: reference.name.clone(),
            key: reference.key.clone(),
        })?;
    if bytes.len() < MIN_KEY_BYTES {
        return Err(MintError::WeakKey {
            name: reference.name.clone(),
            bytes: bytes.len(),
        });
    }
    let key = VwrKey::new(edge.signing_key_id.clone(), bytes);
    mint_with(
        &key,
        &format!("{ns}/{}", request.room),
        request,
        end,
        Timestamp::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ttl_seconds: Option<u64>) -> MintRequest {
        MintRequest {
            namespace: "ns".into(),
            room: "room".into(),
            count: 3,
            mode: InviteMode::Priority,
            ttl_seconds,
            prefix: "fc-".into(),
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("a time")
    }

    fn key() -> VwrKey {
        VwrKey::new("k1", b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn codes_are_distinct_verifiable_and_expire_at_the_ttl_or_the_end() {
        let end = (at(10_000), "the room's spec.invites.validUntil");
        let codes =
            mint_with(&key(), "ns/room", &request(Some(600)), end, at(1_000)).expect("minted");
        assert_eq!(codes.len(), 3);
        let ids: std::collections::BTreeSet<_> = codes.iter().map(|c| c.code_id.clone()).collect();
        assert_eq!(ids.len(), 3, "random ids");
        for code in &codes {
            assert!(code.code_id.starts_with("fc-"));
            let claims = invite::verify(&[key()], &code.code, "ns/room", 1_000).expect("valid");
            assert_eq!(
                (claims.expires_at, claims.mode),
                (1_600, InviteMode::Priority)
            );
        }
        let until_end =
            mint_with(&key(), "ns/room", &request(None), end, at(1_000)).expect("minted");
        assert_eq!(until_end[0].expires_at, 10_000);
    }

    #[test]
    fn a_ttl_past_the_end_an_ended_room_and_bad_arguments_are_refused() {
        let end = (at(10_000), "the Event's salesCloseAt");
        let past = mint_with(&key(), "ns/room", &request(Some(9_001)), end, at(1_000))
            .expect_err("past the close");
        assert!(
            past.to_string().contains("the Event's salesCloseAt"),
            "{past}"
        );
        assert!(matches!(
            mint_with(&key(), "ns/room", &request(None), end, at(10_000)),
            Err(MintError::Ended { .. })
        ));
        let mut none = request(None);
        none.count = 0;
        assert!(matches!(
            mint_with(&key(), "ns/room", &none, end, at(1)),
            Err(MintError::Count(0))
        ));
        let mut bad = request(None);
        bad.prefix = "a|b".into();
        assert!(matches!(
            mint_with(&key(), "ns/room", &bad, end, at(1)),
            Err(MintError::Prefix(_))
        ));
    }
}
