//! Publishing one room to the CloudFront KeyValueStore: a read-modify-write
//! under one ETag.
//!
//! The path index is shared by every room of the store (the root shard
//! `wr/p/` lists every segment shard; a segment shard lists the rooms under
//! it), so a room's write depends on what it read of other rooms. The store
//! only offers a whole-store ETag, so the order is:
//!
//! 1. describe the store (its ETag);
//! 2. read, under it, what the change depends on: the root shard, the room's
//!    entry as published (its old prefixes and kids), the shards of the old
//!    and new prefixes (all listed shards when a prefix is `/`);
//! 3. compute the changes (pure: [`edge_changes`]) and check no other room
//!    holds an overlapping route ([`find_conflict`]): the same path on a
//!    host both hold (a room without hosts holds every host);
//! 4. write with `IfMatch` of step 1; a conflict means someone wrote after
//!    step 1, so start again from step 1.
//!
//! Describing the store right before the write instead (as the first
//! version did) let two rooms reconciled at once each write a root shard
//! without the other: one gate silently failed open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

use crate::edge::{self, EdgeEntry, IndexShard};
use crate::kvs::{KvsChange, KvsError, KvsWriter};

use super::Error;

/// Conflicts in a row before the write gives up (and the reconcile retries).
const MAX_CONFLICTS: u32 = 8;

/// The store operations a publication needs (the emulator or AWS through
/// [`KvsWriter`]; tests wrap it to force conflicts).
pub trait EdgeStore: Sync {
    fn etag(&self) -> impl Future<Output = Result<String, KvsError>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, KvsError>> + Send;
    fn write_if_match(
        &self,
        etag: &str,
        changes: &[KvsChange],
    ) -> impl Future<Output = Result<String, KvsError>> + Send;
}

impl EdgeStore for KvsWriter {
    fn etag(&self) -> impl Future<Output = Result<String, KvsError>> + Send {
        KvsWriter::etag(self)
    }
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, KvsError>> + Send {
        KvsWriter::get(self, key)
    }
    fn write_if_match(
        &self,
        etag: &str,
        changes: &[KvsChange],
    ) -> impl Future<Output = Result<String, KvsError>> + Send {
        KvsWriter::write_if_match(self, etag, changes)
    }
}

/// What one room wants at the edge.
#[derive(Debug, Clone)]
pub struct Publication {
    /// `wr/<namespace>/<name>`.
    pub room_key: String,
    /// `<namespace>/<name>`.
    pub room_id: String,
    /// The entry to publish; `None` removes the room and its keys.
    pub entry: Option<EdgeEntry>,
    /// `(kid, hex key)` to put under `key/<room>/<kid>`: the keys whose
    /// Secret the operator read. Kids the entry accepts without a value
    /// here (retired, their passes still alive) keep the value they have.
    pub keys: Vec<(String, String)>,
}

/// How a publication ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written; the store's ETag after the write.
    Written { etag: String },
    /// The store already held exactly this.
    Unchanged,
    /// Another room holds an overlapping prefix; nothing was written.
    PathConflict(PathConflict),
}

/// A route of this room that overlaps one of another room of the same store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathConflict {
    pub prefix: String,
    /// `wr/<namespace>/<name>` of the room holding it.
    pub other_room: String,
    pub other_prefix: String,
}

impl std::fmt::Display for PathConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "protected prefix {} overlaps {} of WaitingRoom {} at the same edge; the room holding a path first keeps it, so this room is not published (change one of the prefixes)",
            self.prefix,
            self.other_prefix,
            self.other_room.trim_start_matches("wr/")
        )
    }
}

/// Whether requests on routes `a` and `b` can be the same request: their
/// hosts can be the same one (equal, or either route is on every host) and
/// one path is the other or a prefix of it on a segment boundary, as the
/// gate matches (`/events` covers `/events/x`, not `/eventsx`). Paths are
/// compared without ASCII case: a room that matches without case would take
/// the other's paths.
pub fn overlaps(a: &str, b: &str) -> bool {
    let ((host_a, a), (host_b, b)) = (edge::split_route(a), edge::split_route(b));
    if let (Some(host_a), Some(host_b)) = (host_a, host_b)
        && !host_a.eq_ignore_ascii_case(host_b)
    {
        return false;
    }
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    covers(&a, &b) || covers(&b, &a)
}

fn covers(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
}

/// The first of `room_key`'s `routes` that another room of the index holds
/// overlapping.
pub fn find_conflict<'a>(
    room_key: &str,
    routes: &[String],
    shards: impl IntoIterator<Item = &'a IndexShard>,
) -> Option<PathConflict> {
    let others: Vec<&(String, String)> = shards
        .into_iter()
        .flat_map(|shard| shard.rooms.iter())
        .filter(|(_, room)| room != room_key)
        .collect();
    routes.iter().find_map(|prefix| {
        others
            .iter()
            .find(|(other, _)| overlaps(prefix, other))
            .map(|(other_prefix, other_room)| PathConflict {
                prefix: prefix.clone(),
                other_room: other_room.clone(),
                other_prefix: other_prefix.clone(),
            })
    })
}

/// The KVS changes that publish `entry` for `room_key` (or remove the room
/// when `None`), given the shards as read: the room's routes go exactly
/// where they belong and nowhere else, the root shard lists the segments
/// that have a shard. Pure.
pub fn edge_changes(
    room_key: &str,
    entry: Option<&EdgeEntry>,
    shards: &HashMap<String, Option<String>>,
) -> Result<Vec<KvsChange>, Error> {
    let mut changes = Vec::new();
    let root_key = edge::shard_key("/");
    let mine: Vec<(String, String)> = entry
        .map(|e| {
            e.routes()
                .into_iter()
                .map(|route| (edge::shard_key(&route), route))
                .collect()
        })
        .unwrap_or_default();
    let mut index: BTreeMap<String, IndexShard> = shards
        .iter()
        .filter(|(key, _)| key.starts_with("wr/p/"))
        .map(|(key, value)| (key.clone(), IndexShard::decode(value.as_deref())))
        .collect();
    for (key, _) in &mine {
        index.entry(key.clone()).or_default();
    }
    for (key, shard) in &mut index {
        shard.set_room(
            room_key,
            mine.iter()
                .filter(|(k, _)| k == key)
                .map(|(_, p)| p.clone()),
        );
    }
    let mut root = index.remove(&root_key).unwrap_or_default();
    for (key, shard) in &index {
        root.set_segment(key.trim_start_matches("wr/p/"), !shard.is_empty());
        if !shard.is_empty() {
            changes.push(KvsChange::Put {
                key: key.clone(),
                value: shard.encode(key)?,
            });
        } else if shards.get(key).is_some_and(Option::is_some) {
            changes.push(KvsChange::Delete { key: key.clone() });
        }
    }
    changes.push(KvsChange::Put {
        key: root_key.clone(),
        value: root.encode(&root_key)?,
    });
    match entry {
        Some(entry) => changes.push(KvsChange::Put {
            key: room_key.to_owned(),
            value: entry.encode(room_key)?,
        }),
        None => changes.push(KvsChange::Delete {
            key: room_key.to_owned(),
        }),
    }
    Ok(changes)
}

/// The key changes: a put for every key given, a delete for every kid the
/// published entry accepted that the new one no longer does.
fn key_changes(publication: &Publication, published: Option<&EdgeEntry>) -> Vec<KvsChange> {
    let accepted: BTreeSet<&str> = publication
        .entry
        .iter()
        .flat_map(|e| e.kids.iter().map(String::as_str))
        .collect();
    let mut changes: Vec<KvsChange> = publication
        .keys
        .iter()
        .filter(|(kid, _)| accepted.contains(kid.as_str()))
        .map(|(kid, hex)| KvsChange::Put {
            key: edge::key_key(&publication.room_id, kid),
            value: hex.clone(),
        })
        .collect();
    for kid in published.iter().flat_map(|e| e.kids.iter()) {
        if !accepted.contains(kid.as_str()) {
            changes.push(KvsChange::Delete {
                key: edge::key_key(&publication.room_id, kid),
            });
        }
    }
    changes
}

/// Everything read under one ETag.
struct Snapshot {
    etag: String,
    /// Key → value (`None`: absent) of every key read.
    values: HashMap<String, Option<String>>,
    /// The key puts and deletes against the published entry.
    key_changes: Vec<KvsChange>,
}

async fn read<S: EdgeStore>(store: &S, publication: &Publication) -> Result<Snapshot, Error> {
    let etag = store.etag().await?;
    let mut values = HashMap::new();
    let root_key = edge::shard_key("/");
    let root = store.get(&root_key).await?;
    let published_value = store.get(&publication.room_key).await?;
    // A published entry this operator cannot read is replaced whole.
    let published: Option<EdgeEntry> = published_value
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok());
    let new_routes: Vec<String> = publication
        .entry
        .iter()
        .flat_map(EdgeEntry::routes)
        .collect();
    let old_routes = published.iter().flat_map(EdgeEntry::routes);
    let mut shard_keys: BTreeSet<String> = new_routes
        .iter()
        .cloned()
        .chain(old_routes)
        .map(|route| edge::shard_key(&route))
        .collect();
    // A room at `/` (on any host) overlaps every room: read every shard to
    // see them.
    if new_routes
        .iter()
        .any(|route| edge::split_route(route).1 == "/")
    {
        let listed = IndexShard::decode(root.as_deref()).segments;
        shard_keys.extend(listed.iter().map(|s| format!("wr/p/{s}")));
    }
    shard_keys.remove(&root_key);
    for key in shard_keys {
        let value = store.get(&key).await?;
        values.insert(key, value);
    }
    values.insert(root_key, root);
    values.insert(publication.room_key.clone(), published_value);
    let key_changes = key_changes(publication, published.as_ref());
    for change in &key_changes {
        if let KvsChange::Put { key, .. } | KvsChange::Delete { key } = change
            && !values.contains_key(key)
        {
            let value = store.get(key).await?;
            values.insert(key.clone(), value);
        }
    }
    Ok(Snapshot {
        etag,
        values,
        key_changes,
    })
}

/// `changes` without those the store already holds (a put of the value a
/// key has, a delete of a key that is gone), so a room that is as it should
/// be writes nothing: every write moves the ETag and wakes every writer.
fn still_needed(
    changes: Vec<KvsChange>,
    values: &HashMap<String, Option<String>>,
) -> Vec<KvsChange> {
    changes
        .into_iter()
        .filter(|change| match change {
            KvsChange::Put { key, value } => {
                values.get(key).and_then(Option::as_deref) != Some(value.as_str())
            }
            KvsChange::Delete { key } => values.get(key).is_some_and(Option::is_some),
        })
        .collect()
}

/// Publishes (or removes) one room: read under the ETag, compute, write
/// with `IfMatch`, from the read again on a conflict.
pub async fn publish<S: EdgeStore>(store: &S, publication: &Publication) -> Result<Outcome, Error> {
    let mut conflicts = 0;
    loop {
        let snapshot = read(store, publication).await?;
        if let Some(entry) = &publication.entry {
            let shards: Vec<IndexShard> = snapshot
                .values
                .iter()
                .filter(|(key, _)| key.starts_with("wr/p/"))
                .map(|(_, value)| IndexShard::decode(value.as_deref()))
                .collect();
            if let Some(conflict) = find_conflict(&publication.room_key, &entry.routes(), &shards) {
                return Ok(Outcome::PathConflict(conflict));
            }
        }
        let mut changes = edge_changes(
            &publication.room_key,
            publication.entry.as_ref(),
            &snapshot.values,
        )?;
        changes.extend(snapshot.key_changes);
        let changes = still_needed(changes, &snapshot.values);
        if changes.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        match store.write_if_match(&snapshot.etag, &changes).await {
            Ok(etag) => return Ok(Outcome::Written { etag }),
            Err(KvsError::Conflict) => {
                conflicts += 1;
                if conflicts >= MAX_CONFLICTS {
                    return Err(KvsError::Contended {
                        attempts: conflicts,
                    }
                    .into());
                }
                tracing::debug!(
                    room = %publication.room_key,
                    conflicts,
                    "the store changed since it was read; reading again"
                );
                crate::kvs::conflict_pause(conflicts).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(rooms: &[(&str, &str)]) -> IndexShard {
        IndexShard {
            v: edge::SCHEMA_VERSION,
            rooms: rooms
                .iter()
                .map(|(p, r)| ((*p).to_owned(), (*r).to_owned()))
                .collect(),
            segments: Vec::new(),
        }
    }

    #[test]
    fn prefixes_overlap_on_segment_boundaries_only() {
        assert!(overlaps("/events", "/events/aurora"));
        assert!(overlaps("/events/aurora", "/events"));
        assert!(overlaps("/events/", "/events/aurora"));
        assert!(overlaps("/", "/anything"));
        assert!(overlaps("/events/aurora", "/events/aurora"));
        assert!(overlaps("/Events/Aurora", "/events/aurora"), "case folds");
        assert!(!overlaps("/events/aurora", "/events/aurora-2"));
        assert!(!overlaps("/healthz", "/healthzX"));
        assert!(!overlaps("/events/a", "/events/b"));
    }

    #[test]
    fn routes_on_different_hosts_never_overlap_and_a_room_on_every_host_overlaps_all() {
        assert!(!overlaps("shop.example.com/events", "m.example.com/events"));
        assert!(overlaps(
            "shop.example.com/events",
            "Shop.Example.com/events/x"
        ));
        assert!(
            overlaps("/events", "m.example.com/events/x"),
            "every host holds m too"
        );
        assert!(overlaps("m.example.com/", "/anything"));
        assert!(!overlaps("m.example.com/a", "/b"));
        let shards = [shard(&[
            ("shop.example.com/events/aurora", "wr/ns-a/aurora"),
            ("shop.example.com/shop", "wr/ns-a/aurora"),
        ])];
        assert_eq!(
            find_conflict(
                "wr/ns-b/mobile",
                &["m.example.com/events/aurora".to_owned()],
                &shards
            ),
            None,
            "the same path on another host is another room's to hold"
        );
        assert_eq!(
            find_conflict("wr/ns-b/everywhere", &["/events".to_owned()], &shards)
                .map(|c| c.other_prefix),
            Some("shop.example.com/events/aurora".to_owned())
        );
    }

    #[test]
    fn a_room_with_hosts_is_indexed_by_host_and_path_in_its_paths_shard() {
        let mut hosted = entry(&["/events/aurora"], &["k1"]);
        hosted.hosts = vec!["shop.example.com".into(), "m.example.com".into()];
        let changes = edge_changes("wr/ns/aurora", Some(&hosted), &HashMap::new()).expect("fits");
        let put = |key: &str| {
            changes.iter().find_map(|c| match c {
                KvsChange::Put { key: k, value } if k == key => {
                    Some(IndexShard::decode(Some(value)))
                }
                _ => None,
            })
        };
        assert_eq!(
            put("wr/p/events").expect("the events shard").rooms,
            vec![
                (
                    "m.example.com/events/aurora".to_owned(),
                    "wr/ns/aurora".to_owned()
                ),
                (
                    "shop.example.com/events/aurora".to_owned(),
                    "wr/ns/aurora".to_owned()
                ),
            ]
        );
        assert_eq!(
            put("wr/p/").expect("root").segments,
            vec!["events".to_owned()]
        );
    }

    #[test]
    fn another_rooms_overlapping_prefix_is_a_conflict_and_its_own_is_not() {
        let shards = [
            shard(&[("/events/aurora", "wr/ns-a/aurora")]),
            shard(&[("/shop", "wr/ns-b/shop")]),
        ];
        assert_eq!(
            find_conflict("wr/ns-c/thief", &["/events".to_owned()], &shards),
            Some(PathConflict {
                prefix: "/events".into(),
                other_room: "wr/ns-a/aurora".into(),
                other_prefix: "/events/aurora".into(),
            })
        );
        assert_eq!(
            find_conflict("wr/ns-a/aurora", &["/events/aurora".to_owned()], &shards),
            None,
            "a room does not conflict with itself"
        );
        assert_eq!(
            find_conflict("wr/ns-c/new", &["/events/aurora-2".to_owned()], &shards),
            None
        );
        assert!(find_conflict("wr/ns-c/site", &["/".to_owned()], &shards).is_some());
    }

    fn entry(protected: &[&str], kids: &[&str]) -> EdgeEntry {
        EdgeEntry {
            v: edge::SCHEMA_VERSION,
            room: "ns/room".into(),
            active: true,
            enforce_from: 0,
            protected: protected.iter().map(|p| (*p).to_owned()).collect(),
            bypass: Vec::new(),
            waiting_page: "/waiting/room".into(),
            serving: urr_service_common::serving::ServingParams {
                start: 0,
                per_interval: 1,
                interval_seconds: 1,
                epoch: 0,
                paused_at: None,
            },
            kids: kids.iter().map(|k| (*k).to_owned()).collect(),
            case_insensitive: false,
            method: None,
            hosts: Vec::new(),
            sold_out: false,
        }
    }

    #[test]
    fn keys_of_kids_no_longer_accepted_are_deleted_and_only_accepted_ones_put() {
        let publication = Publication {
            room_key: "wr/ns/room".into(),
            room_id: "ns/room".into(),
            entry: Some(entry(&["/a"], &["k3", "k2"])),
            keys: vec![("k3".into(), "33".into()), ("k9".into(), "99".into())],
        };
        let changes = key_changes(&publication, Some(&entry(&["/a"], &["k2", "k1"])));
        assert_eq!(
            changes,
            vec![
                KvsChange::Put {
                    key: "key/ns/room/k3".into(),
                    value: "33".into()
                },
                KvsChange::Delete {
                    key: "key/ns/room/k1".into()
                },
            ]
        );
    }

    #[test]
    fn a_moved_prefix_leaves_its_old_shard_and_the_root_keeps_other_segments() {
        let values = HashMap::from([
            (
                "wr/p/".to_owned(),
                Some(r#"{"v":1,"rooms":[],"segments":["old","other"]}"#.to_owned()),
            ),
            (
                "wr/p/old".to_owned(),
                Some(r#"{"v":1,"rooms":[["/old","wr/ns/room"]]}"#.to_owned()),
            ),
            ("wr/p/new".to_owned(), None),
        ]);
        let changes =
            edge_changes("wr/ns/room", Some(&entry(&["/new"], &["k"])), &values).expect("changes");
        assert!(changes.contains(&KvsChange::Delete {
            key: "wr/p/old".into()
        }));
        assert!(changes.contains(&KvsChange::Put {
            key: "wr/p/".into(),
            value: r#"{"v":1,"rooms":[],"segments":["new","other"]}"#.into()
        }));
    }
}
