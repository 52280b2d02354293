//! What the WaitingRoom controller publishes to the CloudFront KeyValueStore
//! for the edge function (`edge-functions/gate.js`), encoded in one place:
//!
//! | key | value |
//! |---|---|
//! | `wr/<namespace>/<name>` | the room's [`EdgeEntry`], JSON, under 1 KB |
//! | `wr/p/<first path segment>` | [`IndexShard`]: `[route, room key]` pairs of the rooms whose protected prefixes start with that segment (`wr/p/` for prefixes at `/`; this root shard also lists the segments that have a shard) |
//! | `key/<namespace>/<name>/<kid>` | hex HMAC key of the room's `urr-vwr-token` (one per id in the entry's `kids`) |
//!
//! A signing key lives under its room: the edge checks a pass only with a key
//! whose id the room's entry lists in `kids`, read at the room's own path, so
//! whoever may create a WaitingRoom in one namespace cannot sign passes for
//! another room (one `key/<kid>` namespace for all rooms let them). An empty
//! key value is refused, never used as an empty HMAC key.
//!
//! The index is sharded by first path segment because a KVS value holds at
//! most 1 KB: one index of every room would overflow with a few dozen rooms,
//! while a shard only lists the rooms under one segment. The edge reads the
//! shard of the request's first segment, then the root shard, then the room.
//!
//! A route is a protected prefix (`/events/x`: on every host the
//! distribution serves) or, for a room with `spec.paths.hosts`, the host
//! and the prefix (`m.example.com/events/x`: on that host only), one route
//! per host and prefix ([`EdgeEntry::routes`]). Cloudflare calls these a
//! room's additional routes. The edge compares the host in ASCII lowercase,
//! without a port or a final dot ([`normalize_host`]).
//!
//! The edge matches the normalised URI (unreserved `%XX` decoded, `//`
//! collapsed, dot segments resolved) against prefixes on segment boundaries:
//! `/healthz` covers `/healthz` and `/healthz/x`, not `/healthzX`; a prefix
//! ending in `/` covers what is under it. With `caseInsensitive` both sides
//! are compared in ASCII lowercase. The shared decision vectors
//! (`edge-functions/testdata/gate-decisions.json`) pin this down for both
//! the function and the load generator's twin (`tools/load/src/gate`).

use crate::serving::ServingParams;
use serde::{Deserialize, Serialize};

/// KVS values are limited to 1 KB.
pub const MAX_VALUE_BYTES: usize = 1024;
pub const SCHEMA_VERSION: u32 = 1;

/// The room as the edge sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeEntry {
    pub v: u32,
    /// `<namespace>/<name>`, as signed into tokens.
    pub room: String,
    pub active: bool,
    /// Unix seconds from which every edge enforces (published in the future
    /// by the propagation margin).
    pub enforce_from: i64,
    pub protected: Vec<String>,
    pub bypass: Vec<String>,
    pub waiting_page: String,
    pub serving: ServingParams,
    /// The signing key ids the edge accepts for this room, current first;
    /// each key is at [`key_key`]`(room, kid)`.
    pub kids: Vec<String>,
    /// Match prefixes ignoring ASCII case (`spec.paths.caseInsensitive`).
    /// Omitted when false, so the entries of rooms without it do not grow.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
    /// `passthrough`: the edge lets everyone through (the queue counts
    /// them); `reject`: the sale is closed, a visitor without a served pass
    /// gets `403 sale-closed` (JSON) or the waiting page's closed screen.
    /// Omitted for `fifo` and `random`, which the edge gates alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<EdgeMethod>,
    /// The hostnames the room holds (`spec.paths.hosts`, lowercase); empty:
    /// every host. The index carries them ([`EdgeEntry::routes`]); the entry
    /// lists them so what is published can be read back. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The queue reports fewer places than `inventory.minPlaces`: held
    /// visitors are told so (`admission: soldOut` in the 429 JSON).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sold_out: bool,
}

/// The queueing methods the edge acts on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeMethod {
    Passthrough,
    Reject,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// One shard of the path index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexShard {
    pub v: u32,
    /// `[route, room key]`, sorted, no duplicates.
    pub rooms: Vec<(String, String)>,
    /// In the root shard only: the segments that have a shard, so the edge
    /// never reads a missing key (a KVS miss throws: the slow path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EdgeError {
    #[error(
        "the edge value of {key} is {bytes} bytes; CloudFront KeyValueStore values are limited to 1024"
    )]
    TooLarge { key: String, bytes: usize },
}

pub fn room_key(namespace: &str, name: &str) -> String {
    format!("wr/{namespace}/{name}")
}

/// The route of `prefix` on `host` (`None`: every host): the prefix itself,
/// or the host followed by it.
pub fn route(host: Option<&str>, prefix: &str) -> String {
    match host {
        Some(host) => format!("{host}{prefix}"),
        None => prefix.to_owned(),
    }
}

/// A route's host (`None`: every host) and path prefix. A route is a path
/// (it starts with `/`) or a host followed by one; a route without a path
/// is a host on `/`.
pub fn split_route(route: &str) -> (Option<&str>, &str) {
    match route.find('/') {
        Some(0) => (None, route),
        Some(slash) => (Some(&route[..slash]), &route[slash..]),
        None => (Some(route), "/"),
    }
}

/// The `Host` of a request as the edge compares it with a room's hosts:
/// ASCII lowercase, without a port (`shop.example.com:443`) or the final
/// dot of a fully qualified name.
pub fn normalize_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    // A bracketed IPv6 literal (`[::1]`) ends in `]`, so only a port goes.
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => host,
    };
    host.strip_suffix('.').unwrap_or(&host).to_owned()
}

/// The index shard a route (or a path prefix) belongs to: by the first
/// segment of its path.
pub fn shard_key(route: &str) -> String {
    let (_, prefix) = split_route(route);
    let segment = prefix
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    format!("wr/p/{segment}")
}

/// The KVS key of signing key `kid` of room `room_id` (`<namespace>/<name>`).
pub fn key_key(room_id: &str, kid: &str) -> String {
    format!("key/{room_id}/{kid}")
}

fn checked(key: &str, value: String) -> Result<String, EdgeError> {
    if value.len() >= MAX_VALUE_BYTES {
        return Err(EdgeError::TooLarge {
            key: key.to_owned(),
            bytes: value.len(),
        });
    }
    Ok(value)
}

impl EdgeEntry {
    /// The index routes of the room: each protected prefix on each of its
    /// hosts, or on every host when it names none.
    pub fn routes(&self) -> Vec<String> {
        if self.hosts.is_empty() {
            return self.protected.clone();
        }
        self.hosts
            .iter()
            .flat_map(|host| self.protected.iter().map(|p| route(Some(host), p)))
            .collect()
    }

    pub fn encode(&self, key: &str) -> Result<String, EdgeError> {
        checked(key, serde_json::to_string(self).unwrap_or_default())
    }
}

impl IndexShard {
    /// Sets the routes of `room` in this shard (replacing the room's old ones).
    pub fn set_room(&mut self, room: &str, routes: impl IntoIterator<Item = String>) {
        self.v = SCHEMA_VERSION;
        self.rooms.retain(|(_, key)| key != room);
        self.rooms
            .extend(routes.into_iter().map(|p| (p, room.to_owned())));
        self.rooms.sort();
        self.rooms.dedup();
    }

    /// Records whether the shard of `segment` exists (root shard only).
    pub fn set_segment(&mut self, segment: &str, present: bool) {
        self.v = SCHEMA_VERSION;
        self.segments.retain(|s| s != segment);
        if present {
            self.segments.push(segment.to_owned());
            self.segments.sort();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    pub fn encode(&self, key: &str) -> Result<String, EdgeError> {
        checked(key, serde_json::to_string(self).unwrap_or_default())
    }

    /// Reads a shard; a missing or unreadable one is empty (it is rewritten whole).
    pub fn decode(value: Option<&str>) -> Self {
        value
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> EdgeEntry {
        EdgeEntry {
            v: SCHEMA_VERSION,
            room: "urr-demo/aurora-seoul-2026".into(),
            active: true,
            enforce_from: 1_765_536_630,
            protected: vec![
                "/events/aurora-seoul-2026".into(),
                "/api/v1/events/aurora-seoul-2026".into(),
            ],
            bypass: vec!["/waiting/".into(), "/static/".into(), "/healthz".into()],
            waiting_page: "/waiting/aurora-seoul-2026".into(),
            serving: ServingParams {
                start: 0,
                per_interval: 500,
                interval_seconds: 10,
                epoch: 1_765_536_630,
                paused_at: None,
            },
            kids: vec!["2026-11".into()],
            case_insensitive: false,
            method: None,
            hosts: Vec::new(),
            sold_out: false,
        }
    }

    #[test]
    fn the_entry_has_the_fields_the_edge_function_reads() {
        let value: serde_json::Value =
            serde_json::from_str(&entry().encode("k").expect("fits")).expect("json");
        for field in [
            "v",
            "room",
            "active",
            "enforceFrom",
            "protected",
            "bypass",
            "waitingPage",
            "serving",
            "kids",
        ] {
            assert!(value.get(field).is_some(), "{field}");
        }
        assert_eq!(value["kids"], serde_json::json!(["2026-11"]));
        assert!(value.get("caseInsensitive").is_none(), "omitted when false");
        let mut ci = entry();
        ci.case_insensitive = true;
        let flagged: serde_json::Value =
            serde_json::from_str(&ci.encode("k").expect("fits")).expect("json");
        assert_eq!(flagged["caseInsensitive"], serde_json::json!(true));
        let back: EdgeEntry = serde_json::from_value(flagged).expect("reads back");
        assert_eq!(back, ci);
        for field in ["start", "perInterval", "intervalSeconds", "epoch"] {
            assert!(value["serving"].get(field).is_some(), "serving.{field}");
        }
    }

    #[test]
    fn the_largest_valid_paths_still_fit_and_more_is_refused() {
        // The CRD allows 512 characters of prefixes in all: the entry must fit.
        let mut big = entry();
        // The longest key ids (64 characters), current and previous, and the flag.
        big.kids = vec!["k".repeat(64), "p".repeat(64)];
        big.case_insensitive = true;
        big.protected = (0..4).map(|i| format!("/{i}{}", "p".repeat(126))).collect();
        assert!(
            big.encode("k").is_ok(),
            "{}",
            big.encode("k").map(|v| v.len()).unwrap_or_default()
        );
        big.bypass = (0..4).map(|i| format!("/{i}{}", "b".repeat(126))).collect();
        assert!(matches!(
            big.encode("wr/x/y"),
            Err(EdgeError::TooLarge { .. })
        ));
    }

    #[test]
    fn signing_keys_live_under_their_room() {
        assert_eq!(
            key_key("urr-demo/aurora-seoul-2026", "2026-11"),
            "key/urr-demo/aurora-seoul-2026/2026-11"
        );
        assert_ne!(key_key("a/b", "k"), key_key("a/c", "k"));
    }

    #[test]
    fn shards_follow_the_first_segment_and_keep_other_rooms() {
        assert_eq!(shard_key("/events/aurora"), "wr/p/events");
        assert_eq!(shard_key("/api/v1/events/x"), "wr/p/api");
        assert_eq!(shard_key("/"), "wr/p/");
        let mut shard =
            IndexShard::decode(Some(r#"{"v":1,"rooms":[["/events/other","wr/ns/other"]]}"#));
        shard.set_room("wr/ns/aurora", ["/events/aurora".to_owned()]);
        shard.set_room("wr/ns/aurora", ["/events/aurora2".to_owned()]);
        assert_eq!(
            shard.rooms,
            vec![
                ("/events/aurora2".into(), "wr/ns/aurora".into()),
                ("/events/other".into(), "wr/ns/other".into())
            ]
        );
        shard.set_room("wr/ns/aurora", []);
        shard.set_room("wr/ns/other", []);
        assert!(shard.is_empty());
        assert_eq!(IndexShard::decode(Some("garbage")), IndexShard::default());
        let mut root = IndexShard::default();
        root.set_segment("events", true);
        root.set_segment("api", true);
        root.set_segment("events", false);
        assert_eq!(
            root.encode("wr/p/").expect("fits"),
            r#"{"v":1,"rooms":[],"segments":["api"]}"#
        );
    }

    #[test]
    fn a_room_with_hosts_has_a_route_per_host_and_prefix() {
        let mut hosted = entry();
        assert_eq!(hosted.routes(), hosted.protected, "no hosts: the prefixes");
        hosted.hosts = vec!["shop.example.com".into(), "m.example.com".into()];
        assert_eq!(
            hosted.routes(),
            vec![
                "shop.example.com/events/aurora-seoul-2026",
                "shop.example.com/api/v1/events/aurora-seoul-2026",
                "m.example.com/events/aurora-seoul-2026",
                "m.example.com/api/v1/events/aurora-seoul-2026",
            ]
        );
        for route in hosted.routes() {
            let (host, prefix) = split_route(&route);
            assert!(hosted.hosts.iter().any(|h| Some(h.as_str()) == host));
            assert!(hosted.protected.iter().any(|p| p == prefix));
        }
        assert_eq!(split_route("/events"), (None, "/events"));
        assert_eq!(split_route("m.example.com"), (Some("m.example.com"), "/"));
        assert_eq!(shard_key("m.example.com/events/x"), "wr/p/events");
        assert_eq!(shard_key("m.example.com/"), "wr/p/");
        let value: serde_json::Value =
            serde_json::from_str(&hosted.encode("k").expect("fits")).expect("json");
        assert_eq!(value["hosts"][1], "m.example.com");
        assert!(
            serde_json::to_value(entry())
                .expect("json")
                .get("hosts")
                .is_none(),
            "omitted when empty"
        );
    }

    #[test]
    fn a_request_host_is_compared_lowercase_without_port_or_final_dot() {
        for (given, compared) in [
            ("Shop.Example.COM", "shop.example.com"),
            ("shop.example.com:443", "shop.example.com"),
            ("shop.example.com.", "shop.example.com"),
            ("SHOP.example.com.:8443", "shop.example.com"),
            ("[::1]:443", "[::1]"),
            ("[::1]", "[::1]"),
        ] {
            assert_eq!(normalize_host(given), compared, "{given}");
        }
    }
}
