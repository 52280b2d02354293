//! The edge gate as the CloudFront function (`edge-functions/gate.js`) runs
//! it, from what the operator published to the KeyValueStore (the emulator):
//! the root and segment shards of the path index, the room's entry
//! `wr/<namespace>/<name>` and its signing keys `key/<namespace>/<name>/<kid>`
//! (one per id in the entry's `kids`). Nothing of it comes from `run.json`:
//! a crowd that passes here passed what the edge would have read.
//!
//! [`decide`] is the pure decision (normalisation, segment matching, the
//! room's own keys), [`function`] the whole function on a store's contents,
//! failing open as the edge does; both are checked against the decision
//! vectors `gate.js` is checked against.
//!
//! The edge fails open (a missing or malformed entry lets everyone through,
//! so a broken waiting room never closes the sale). The load generator does
//! the opposite: an entry the edge could not use means the operator's
//! publication is broken, and the run stops with the reason.

pub mod decide;
pub mod function;

use std::sync::{Arc, RwLock};

use urr_operator::kvs::KvsWriter;
use urr_service_common::edge::{self, EdgeEntry, IndexShard, SCHEMA_VERSION};
use urr_service_common::tokens::vwr::VwrKey;

pub use decide::{Decision, decide, normalize, route, shard_segments};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GateError {
    #[error(
        "the KeyValueStore endpoint {0} is not a loopback address; urr-load only loads this machine"
    )]
    NotLoopback(String),
    #[error("cannot read {key} from the KeyValueStore: {detail}")]
    Unreadable { key: String, detail: String },
    #[error(
        "the operator published no {what} at {key} in the KeyValueStore: the edge would let every buyer through ungated (is the operator's edge publication broken?)"
    )]
    Missing { what: &'static str, key: String },
    #[error(
        "the edge entry {key} is malformed ({detail}): the edge would ignore it and let every buyer through ungated"
    )]
    Malformed { key: String, detail: String },
    #[error("the edge would not gate {path}: {detail} (the crowd would not meet the waiting room)")]
    NotGated { path: String, detail: String },
}

/// Reads the room's entry as the edge does and refuses what the edge could
/// not use (it would fail open) or what is not this room's.
pub fn parse_entry(key: &str, value: Option<&str>, room_id: &str) -> Result<EdgeEntry, GateError> {
    let value = value.ok_or_else(|| GateError::Missing {
        what: "edge entry",
        key: key.to_owned(),
    })?;
    let malformed = |detail: String| GateError::Malformed {
        key: key.to_owned(),
        detail,
    };
    let entry: EdgeEntry = serde_json::from_str(value).map_err(|e| malformed(e.to_string()))?;
    if entry.v != SCHEMA_VERSION {
        return Err(malformed(format!(
            "schema version {}, the edge reads {SCHEMA_VERSION}",
            entry.v
        )));
    }
    if entry.room != room_id {
        return Err(malformed(format!(
            "it is for room {:?}, the run is for {room_id:?}",
            entry.room
        )));
    }
    if entry.protected.is_empty() {
        return Err(malformed("it protects no path".into()));
    }
    if entry.kids.is_empty() {
        return Err(malformed("it names no signing key id (kids)".into()));
    }
    if entry.serving.interval_seconds == 0 || entry.serving.per_interval == 0 {
        return Err(malformed(format!(
            "its serving counter never moves ({} every {} s)",
            entry.serving.per_interval, entry.serving.interval_seconds
        )));
    }
    Ok(entry)
}

fn parse_shard(key: &str, value: &str) -> Result<IndexShard, GateError> {
    serde_json::from_str(value).map_err(|e| GateError::Malformed {
        key: key.to_owned(),
        detail: e.to_string(),
    })
}

/// `key/<namespace>/<name>/<kid>`: the HMAC key in hex; empty or not hex is
/// no key (the edge refuses a pass checked with it: `unknown-key`).
pub fn parse_key(key: &str, kid: &str, value: Option<&str>) -> Result<VwrKey, GateError> {
    let value = value.ok_or_else(|| GateError::Missing {
        what: "signing key",
        key: key.to_owned(),
    })?;
    if value.is_empty() {
        return Err(GateError::Malformed {
            key: key.to_owned(),
            detail: "empty".into(),
        });
    }
    let bytes = hex::decode(value).map_err(|e| GateError::Malformed {
        key: key.to_owned(),
        detail: format!("not hex: {e}"),
    })?;
    Ok(VwrKey::new(kid, bytes))
}

/// The gate of one room as the edge currently sees it.
#[derive(Debug, Clone)]
pub struct Gate {
    /// `wr/<namespace>/<name>`.
    pub key: String,
    pub entry: EdgeEntry,
    pub keys: Vec<VwrKey>,
}

impl Gate {
    pub fn decide(&self, path: &str, token: Option<&str>, now: i64) -> Decision {
        decide(&self.entry, &self.keys, path, token, now)
    }

    /// Checks that, once enforced, the edge would hold a buyer without a
    /// pass on `path`: the index routes it to this room, the room protects
    /// it, and nothing bypasses it.
    pub fn check_gates(&self, routed: Option<&str>, path: &str) -> Result<(), GateError> {
        let not_gated = |detail: String| GateError::NotGated {
            path: path.to_owned(),
            detail,
        };
        match routed {
            Some(room) if room == self.key => {}
            Some(other) => {
                return Err(not_gated(format!(
                    "the path index routes it to {other}, not {}",
                    self.key
                )));
            }
            None => {
                return Err(not_gated(format!(
                    "the path index (wr/p/…) routes it to no room, not to {}",
                    self.key
                )));
            }
        }
        let mut enforced = self.entry.clone();
        enforced.active = true;
        enforced.enforce_from = i64::MIN;
        match decide(&enforced, &self.keys, path, None, self.entry.enforce_from) {
            Decision::Wait { .. } | Decision::Closed => Ok(()),
            Decision::Open(why) => Err(not_gated(format!(
                "{why} (protected {:?}, bypass {:?})",
                self.entry.protected, self.entry.bypass
            ))),
            Decision::Served { .. } => Err(not_gated("served without a pass".into())),
        }
    }
}

/// Reads the gate from the KeyValueStore, refreshing it while the crowd runs
/// (activation flips at `enforceFrom`; the operator may republish).
#[derive(Debug)]
pub struct EdgeView {
    kvs: KvsWriter,
    room_key: String,
    room_id: String,
    path: String,
    current: RwLock<Arc<Gate>>,
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = if rest.starts_with('[') {
        rest.split_inclusive(']').next().unwrap_or_default()
    } else {
        rest.split(['/', ':']).next().unwrap_or_default()
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

async fn get(kvs: &KvsWriter, key: &str) -> Result<Option<String>, GateError> {
    kvs.get(key).await.map_err(|e| GateError::Unreadable {
        key: key.to_owned(),
        detail: e.to_string(),
    })
}

impl EdgeView {
    /// The gate for `room_id` (`<namespace>/<name>`) and the buyer's `path`,
    /// or why the published edge configuration cannot gate the crowd.
    pub async fn load(
        endpoint: &str,
        arn: &str,
        room_id: &str,
        path: &str,
    ) -> Result<Self, GateError> {
        if !is_loopback_url(endpoint) {
            return Err(GateError::NotLoopback(endpoint.to_owned()));
        }
        let (namespace, name) = room_id.split_once('/').unwrap_or(("", room_id));
        let kvs = KvsWriter::new(arn, Some(endpoint))
            .await
            .with_retries(3, std::time::Duration::from_millis(100));
        let room_key = edge::room_key(namespace, name);
        let gate = Self::read(&kvs, &room_key, room_id, path).await?;
        Ok(Self {
            kvs,
            room_key,
            room_id: room_id.to_owned(),
            path: path.to_owned(),
            current: RwLock::new(Arc::new(gate)),
        })
    }

    async fn read(
        kvs: &KvsWriter,
        room_key: &str,
        room_id: &str,
        path: &str,
    ) -> Result<Gate, GateError> {
        let root_key = edge::shard_key("/");
        let root = get(kvs, &root_key)
            .await?
            .ok_or_else(|| GateError::Missing {
                what: "root shard of the path index",
                key: root_key.clone(),
            })?;
        let root = parse_shard(&root_key, &root)?;
        // The buyer's path as the edge sees it (a query is not part of it).
        let path = normalize(path.split('?').next().unwrap_or_default());
        let mut shards = Vec::new();
        for segment in shard_segments(&root, &path) {
            let key = format!("wr/p/{segment}");
            let value = get(kvs, &key).await?.ok_or_else(|| GateError::Missing {
                what: "path index shard the root shard lists",
                key: key.clone(),
            })?;
            shards.push(parse_shard(&key, &value)?);
        }
        let entry = parse_entry(room_key, get(kvs, room_key).await?.as_deref(), room_id)?;
        // Other rooms' entries are not read: one that only covers the path
        // ignoring case is taken as case-sensitive.
        // The buyers of a room with hosts come on its first one.
        let routed = route(
            &root,
            &shards,
            entry.hosts.first().map(String::as_str),
            &path,
            |key| key == room_key && entry.case_insensitive,
        );
        // The current key (first) must be there: the queue signs with it.
        // An older one the edge would refuse a pass of is simply not used.
        let mut keys = Vec::with_capacity(entry.kids.len());
        for (index, kid) in entry.kids.iter().enumerate() {
            let key = edge::key_key(&entry.room, kid);
            match parse_key(&key, kid, get(kvs, &key).await?.as_deref()) {
                Ok(parsed) => keys.push(parsed),
                Err(error) if index == 0 => return Err(error),
                Err(_) => {}
            }
        }
        let gate = Gate {
            key: room_key.to_owned(),
            entry,
            keys,
        };
        gate.check_gates(routed.as_deref(), &path)?;
        Ok(gate)
    }

    /// The gate as last read.
    pub fn current(&self) -> Arc<Gate> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the store again; on success the buyers use the new gate, on a
    /// failure they keep the last one and the caller learns why.
    pub async fn refresh(&self) -> Result<(), GateError> {
        let gate = Self::read(&self.kvs, &self.room_key, &self.room_id, &self.path).await?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(gate);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::decide::tests::{NOW, PATH, ROOM, entry, key, pass};
    use super::*;

    #[test]
    fn a_missing_or_malformed_entry_fails_the_run() {
        let key = "wr/urr-demo/aurora-seoul-2026";
        let good = entry().encode(key).expect("fits");
        assert_eq!(parse_entry(key, Some(&good), ROOM), Ok(entry()));
        assert!(matches!(
            parse_entry(key, None, ROOM),
            Err(GateError::Missing { .. })
        ));
        let mut bad: Vec<String> = vec!["{".into(), r#"{"v":1}"#.into()];
        for change in [
            (|e: &mut EdgeEntry| e.v = 2) as fn(&mut EdgeEntry),
            |e| e.room = "urr-demo/other".into(),
            |e| e.protected.clear(),
            |e| e.kids.clear(),
            |e| e.serving.interval_seconds = 0,
            |e| e.serving.per_interval = 0,
        ] {
            let mut e = entry();
            change(&mut e);
            bad.push(e.encode(key).expect("fits"));
        }
        for value in bad {
            assert!(
                matches!(
                    parse_entry(key, Some(&value), ROOM),
                    Err(GateError::Malformed { .. })
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn signing_keys_are_hex() {
        let hex = hex::encode(b"the signing key");
        let parsed = parse_key("key/2026-11", "2026-11", Some(&hex)).expect("hex");
        assert_eq!(
            decide(&entry(), &[parsed], PATH, Some(&pass(1)), NOW),
            Decision::Served { number: 1 }
        );
        for bad in ["", "abc", "zz"] {
            assert!(matches!(
                parse_key("key/k", "k", Some(bad)),
                Err(GateError::Malformed { .. })
            ));
        }
        assert!(matches!(
            parse_key("key/k", "k", None),
            Err(GateError::Missing { .. })
        ));
    }

    #[test]
    fn the_index_routes_the_longest_prefix_and_the_gate_must_cover_the_path() {
        let room = "wr/urr-demo/aurora-seoul-2026".to_owned();
        let root = IndexShard {
            v: 1,
            rooms: vec![("/".into(), "wr/urr-demo/everything".into())],
            segments: vec!["events".into()],
        };
        let events = IndexShard {
            v: 1,
            rooms: vec![
                ("/events/".into(), "wr/urr-demo/all-events".into()),
                (PATH.into(), room.clone()),
            ],
            segments: vec![],
        };
        assert_eq!(
            route(&root, std::slice::from_ref(&events), None, PATH, |_| false),
            Some(room.clone())
        );
        assert_eq!(
            route(
                &root,
                std::slice::from_ref(&events),
                None,
                "/events/other",
                |_| false
            ),
            Some("wr/urr-demo/all-events".into())
        );
        assert_eq!(
            route(&root, &[], None, PATH, |_| false),
            Some("wr/urr-demo/everything".into())
        );
        assert_eq!(
            route(&IndexShard::default(), &[], None, PATH, |_| false),
            None
        );

        let gate = Gate {
            key: room.clone(),
            // Not enforced yet: the check is about the gate once it is.
            entry: EdgeEntry {
                active: false,
                ..entry()
            },
            keys: vec![key()],
        };
        assert_eq!(gate.check_gates(Some(&room), PATH), Ok(()));
        assert!(matches!(
            gate.check_gates(Some("wr/urr-demo/all-events"), PATH),
            Err(GateError::NotGated { .. })
        ));
        assert!(matches!(
            gate.check_gates(None, PATH),
            Err(GateError::NotGated { .. })
        ));
        assert!(matches!(
            gate.check_gates(Some(&room), "/events/aurora-seoul-2026/static/x"),
            Err(GateError::NotGated { .. })
        ));
        assert!(matches!(
            gate.check_gates(Some(&room), "/elsewhere"),
            Err(GateError::NotGated { .. })
        ));
    }

    #[test]
    fn only_loopback_stores_are_read() {
        assert!(is_loopback_url("http://127.0.0.1:47567"));
        assert!(is_loopback_url("http://localhost:1/x"));
        assert!(is_loopback_url("http://[::1]:8080"));
        assert!(!is_loopback_url(
            "https://abc.cloudfront-kvs.global.api.aws"
        ));
        assert!(!is_loopback_url("http://127.0.0.1.example.com:1"));
    }
}
