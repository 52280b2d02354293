//! Publishing rooms to the KeyValueStore emulator of the local stack
//! (`scripts/stack up`; `URR_KVS_ENDPOINT`, `URR_KVS_ARN`): the
//! read-modify-write survives a writer that lands between the read and the
//! write, concurrent rooms keep each other in the shared index, and a room
//! cannot take over another room's paths.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use urr_operator::edge::{EdgeEntry, IndexShard, SCHEMA_VERSION};
use urr_operator::kvs::{KvsChange, KvsError, KvsWriter};
use urr_operator::waiting_room::publish::{EdgeStore, Outcome, Publication, publish};
use urr_service_common::serving::ServingParams;

async fn writer() -> KvsWriter {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `eval \"$(scripts/stack env)\"` (scripts/test does)")
        })
    };
    KvsWriter::new(var("URR_KVS_ARN"), Some(&var("URR_KVS_ENDPOINT"))).await
}

/// A first path segment no other test or run uses, so the shard is ours.
fn segment(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}{:x}{nanos:x}", std::process::id())
}

fn room(namespace: &str, name: &str, prefixes: &[String]) -> Publication {
    let id = format!("{namespace}/{name}");
    Publication {
        room_key: format!("wr/{id}"),
        room_id: id.clone(),
        entry: Some(EdgeEntry {
            v: SCHEMA_VERSION,
            room: id,
            active: true,
            enforce_from: 0,
            protected: prefixes.to_vec(),
            bypass: Vec::new(),
            waiting_page: format!("/waiting/{name}"),
            serving: ServingParams {
                start: 0,
                per_interval: 10,
                interval_seconds: 1,
                epoch: 0,
                paused_at: None,
            },
            kids: vec!["k1".into()],
            case_insensitive: false,
            method: None,
            hosts: Vec::new(),
            sold_out: false,
        }),
        keys: vec![("k1".into(), "ab".repeat(32))],
    }
}

fn removal(publication: &Publication) -> Publication {
    Publication {
        entry: None,
        keys: Vec::new(),
        ..publication.clone()
    }
}

async fn shard(kvs: &KvsWriter, key: &str) -> IndexShard {
    IndexShard::decode(kvs.get(key).await.expect("read").as_deref())
}

/// The real store, with another room's publication landing (through the
/// real store too) right after the first key is read: what was read is
/// stale before the write, whenever the writer fetches its ETag.
struct Meddling<'a> {
    inner: &'a KvsWriter,
    other: &'a Publication,
    meddled: AtomicBool,
    writes: AtomicU32,
}

impl EdgeStore for Meddling<'_> {
    async fn etag(&self) -> Result<String, KvsError> {
        self.inner.etag().await
    }
    async fn get(&self, key: &str) -> Result<Option<String>, KvsError> {
        let value = self.inner.get(key).await;
        if !self.meddled.swap(true, Ordering::SeqCst) {
            let landed = publish(self.inner, self.other)
                .await
                .expect("the other room");
            assert!(matches!(landed, Outcome::Written { .. }), "{landed:?}");
        }
        value
    }
    async fn write_if_match(&self, etag: &str, changes: &[KvsChange]) -> Result<String, KvsError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write_if_match(etag, changes).await
    }
}

#[tokio::test]
async fn a_writer_landing_between_the_read_and_the_write_is_kept_not_overwritten() {
    let kvs = writer().await;
    let (seg_a, seg_b) = (segment("racea"), segment("raceb"));
    let a = room("race", &seg_a, &[format!("/{seg_a}/x")]);
    let b = room(
        "race",
        &seg_b,
        &[format!("/{seg_b}/x"), format!("/{seg_a}/y")],
    );
    let meddling = Meddling {
        inner: &kvs,
        other: &b,
        meddled: AtomicBool::new(false),
        writes: AtomicU32::new(0),
    };
    let outcome = publish(&meddling, &a).await.expect("publish a");
    assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
    assert!(
        meddling.writes.load(Ordering::SeqCst) >= 2,
        "the first write met the other room's change (a conflict) and was redone from a fresh read"
    );
    // Both rooms are in the root shard's segments and in the shared shard.
    let root = shard(&kvs, "wr/p/").await;
    assert!(root.segments.contains(&seg_a), "{root:?}");
    assert!(root.segments.contains(&seg_b), "{root:?}");
    let shared = shard(&kvs, &format!("wr/p/{seg_a}")).await;
    let rooms: Vec<&str> = shared.rooms.iter().map(|(_, r)| r.as_str()).collect();
    assert!(rooms.contains(&a.room_key.as_str()), "{shared:?}");
    assert!(rooms.contains(&b.room_key.as_str()), "{shared:?}");

    for publication in [&a, &b] {
        publish(&kvs, &removal(publication)).await.expect("remove");
    }
    let root = shard(&kvs, "wr/p/").await;
    assert!(!root.segments.contains(&seg_a) && !root.segments.contains(&seg_b));
    assert_eq!(
        kvs.get(&format!("key/race/{seg_a}/k1"))
            .await
            .expect("read"),
        None
    );
}

#[tokio::test]
async fn rooms_published_at_once_all_stay_in_the_index() {
    let kvs = writer().await;
    let rooms: Vec<Publication> = (0..6)
        .map(|i| {
            let seg = segment(&format!("many{i}x"));
            room("many", &seg, &[format!("/{seg}")])
        })
        .collect();
    let results = futures::future::join_all(rooms.iter().map(|r| publish(&kvs, r))).await;
    for result in results {
        assert!(matches!(result, Ok(Outcome::Written { .. })), "{result:?}");
    }
    let root = shard(&kvs, "wr/p/").await;
    for r in &rooms {
        let seg = r.room_id.trim_start_matches("many/");
        assert!(
            root.segments.iter().any(|s| s == seg),
            "{seg} lost: {root:?}"
        );
        assert!(kvs.get(&r.room_key).await.expect("read").is_some());
    }
    for r in &rooms {
        publish(&kvs, &removal(r)).await.expect("remove");
    }
}

#[tokio::test]
async fn a_room_cannot_take_over_another_rooms_paths() {
    let kvs = writer().await;
    let seg = segment("owned");
    let owner = room("team-a", "sale", &[format!("/{seg}/sale")]);
    assert!(matches!(
        publish(&kvs, &owner).await.expect("owner"),
        Outcome::Written { .. }
    ));
    for prefix in [
        format!("/{seg}"),
        format!("/{seg}/sale"),
        format!("/{seg}/sale/checkout"),
        format!("/{seg}/SALE"),
    ] {
        let thief = room(
            "team-b",
            &format!("thief-{seg}"),
            std::slice::from_ref(&prefix),
        );
        match publish(&kvs, &thief).await.expect("thief") {
            Outcome::PathConflict(conflict) => {
                assert_eq!(conflict.other_room, owner.room_key, "{prefix}");
                assert_eq!(conflict.prefix, prefix);
            }
            other => panic!("{prefix} was not refused: {other:?}"),
        }
        assert_eq!(
            kvs.get(&thief.room_key).await.expect("read"),
            None,
            "{prefix}"
        );
    }
    let neighbour = room(
        "team-b",
        &format!("next-{seg}"),
        &[format!("/{seg}/sale-2")],
    );
    assert!(
        matches!(
            publish(&kvs, &neighbour).await.expect("neighbour"),
            Outcome::Written { .. }
        ),
        "a prefix that only shares characters, not a segment, is no conflict"
    );
    let shared = shard(&kvs, &format!("wr/p/{seg}")).await;
    assert_eq!(
        shared.rooms,
        vec![
            (format!("/{seg}/sale"), owner.room_key.clone()),
            (format!("/{seg}/sale-2"), neighbour.room_key.clone()),
        ]
    );
    for r in [&owner, &neighbour] {
        publish(&kvs, &removal(r)).await.expect("remove");
    }
}

fn on_hosts(mut publication: Publication, hosts: &[&str]) -> Publication {
    if let Some(entry) = &mut publication.entry {
        entry.hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
    }
    publication
}

#[tokio::test]
async fn rooms_on_different_hosts_share_a_path_and_a_room_on_every_host_cannot() {
    let kvs = writer().await;
    let seg = segment("hosts");
    let path = format!("/{seg}/sale");
    let shop = on_hosts(
        room(
            "team-a",
            &format!("shop-{seg}"),
            std::slice::from_ref(&path),
        ),
        &["shop.example.com"],
    );
    let mobile = on_hosts(
        room("team-b", &format!("m-{seg}"), std::slice::from_ref(&path)),
        &["m.example.com", "app.example.com"],
    );
    for r in [&shop, &mobile] {
        let outcome = publish(&kvs, r).await.expect("publish");
        assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
    }
    assert_eq!(
        shard(&kvs, &format!("wr/p/{seg}")).await.rooms,
        vec![
            (format!("app.example.com{path}"), mobile.room_key.clone()),
            (format!("m.example.com{path}"), mobile.room_key.clone()),
            (format!("shop.example.com{path}"), shop.room_key.clone()),
        ]
    );
    let everywhere = room("team-c", &format!("all-{seg}"), &[format!("/{seg}")]);
    match publish(&kvs, &everywhere).await.expect("everywhere") {
        Outcome::PathConflict(conflict) => assert_eq!(conflict.prefix, format!("/{seg}")),
        other => panic!("a room on every host took hosted paths: {other:?}"),
    }
    let same_host = on_hosts(
        room(
            "team-c",
            &format!("dup-{seg}"),
            &[format!("{path}/checkout")],
        ),
        &["m.example.com"],
    );
    match publish(&kvs, &same_host).await.expect("same host") {
        Outcome::PathConflict(conflict) => assert_eq!(conflict.other_room, mobile.room_key),
        other => panic!("a room took another's path on its host: {other:?}"),
    }
    // Moving the mobile room off app.example.com takes that route out.
    let moved = on_hosts(mobile.clone(), &["m.example.com"]);
    assert!(matches!(
        publish(&kvs, &moved).await.expect("move"),
        Outcome::Written { .. }
    ));
    assert_eq!(
        shard(&kvs, &format!("wr/p/{seg}")).await.rooms,
        vec![
            (format!("m.example.com{path}"), mobile.room_key.clone()),
            (format!("shop.example.com{path}"), shop.room_key.clone()),
        ]
    );
    for r in [&shop, &moved] {
        publish(&kvs, &removal(r)).await.expect("remove");
    }
    assert!(
        kvs.get(&format!("wr/p/{seg}"))
            .await
            .expect("read")
            .is_none(),
        "the shard goes with its last room"
    );
}

#[tokio::test]
async fn a_rotated_out_key_is_removed_and_a_room_as_published_writes_nothing() {
    let kvs = writer().await;
    let seg = segment("rotate");
    let mut publication = room("rot", &seg, &[format!("/{seg}")]);
    if let Some(entry) = publication.entry.as_mut() {
        entry.kids = vec!["k2".into(), "k1".into()];
    }
    publication.keys = vec![
        ("k2".into(), "cd".repeat(32)),
        ("k1".into(), "ab".repeat(32)),
    ];
    publish(&kvs, &publication).await.expect("publish");
    assert_eq!(
        publish(&kvs, &publication).await.expect("again"),
        Outcome::Unchanged
    );
    let key = |kid: &str| format!("key/rot/{seg}/{kid}");
    assert!(kvs.get(&key("k1")).await.expect("read").is_some());
    if let Some(entry) = publication.entry.as_mut() {
        entry.kids = vec!["k2".into()];
    }
    publication.keys.truncate(1);
    publish(&kvs, &publication).await.expect("rotate");
    assert_eq!(kvs.get(&key("k1")).await.expect("read"), None);
    assert_eq!(
        kvs.get(&key("k2")).await.expect("read"),
        Some("cd".repeat(32))
    );
    publish(&kvs, &removal(&publication)).await.expect("remove");
    assert_eq!(kvs.get(&key("k2")).await.expect("read"), None);
}
