//! The pure decision of the edge gate, as `edge-functions/gate.js` makes it:
//! URI normalisation, prefix matching on segment boundaries (ignoring ASCII
//! case for a `caseInsensitive` room), the path index's longest prefix, and
//! the pass check with the room's own keys. No I/O: [`super::EdgeView`]
//! reads the store, [`super::function`] runs the whole function on a store.
//!
//! The shared decision vectors (`edge-functions/testdata/gate-decisions.json`,
//! written by `tests/gate_decisions.rs`) hold this and `gate.js` to the same
//! outcomes.

use urr_service_common::edge::{self, EdgeEntry, EdgeMethod, IndexShard};
use urr_service_common::tokens::vwr::{self, VwrError, VwrKey};

/// What the edge does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Through without a pass: the room is off, not enforced yet, the path is
    /// not protected, or it is bypassed / waiting-room traffic.
    Open(&'static str),
    /// Through: a valid pass whose number is being served.
    Served { number: u64 },
    /// The sale is closed (`reject`) and the visitor has no served pass:
    /// `403 sale-closed`, or the waiting page's closed screen.
    Closed,
    /// Held at the edge: no valid pass (`refused` says why when there was
    /// one), or its number is not served yet.
    Wait {
        serving: u64,
        number: Option<u64>,
        refused: Option<VwrError>,
    },
}

/// `uri` as the origin will route it (`normalize` in `gate.js`), so the
/// gate decides on what the origin serves: `%XX` of unreserved characters
/// decoded (only those: a decoded `/` or `%` would change the path), runs
/// of `/` collapsed, then dot segments removed (RFC 3986 5.2.4).
pub fn normalize(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes.get(i).copied().unwrap_or_default();
        let escaped = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'));
        match escaped {
            Some(c) => {
                decoded.push(c);
                i += 3;
            }
            None => {
                // Collapse `//`: a slash after a slash is dropped.
                if !(byte == b'/' && decoded.last() == Some(&b'/')) {
                    decoded.push(byte);
                }
                i += 1;
            }
        }
    }
    // Only ASCII bytes were decoded, so this is still valid UTF-8.
    let collapsed = String::from_utf8_lossy(&decoded).into_owned();
    let segments: Vec<&str> = collapsed.split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate().skip(1) {
        let dots = matches!(*segment, "." | "..");
        if *segment == ".." {
            out.pop();
        }
        if !dots {
            out.push(segment);
        } else if index == segments.len() - 1 {
            // `/a/..` is `/a/`'s parent directory: `/`, with its slash.
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// Whether `prefix` covers `path` on a segment boundary (`under` in
/// `gate.js`): `/healthz` covers `/healthz` and `/healthz/x`, not
/// `/healthzX`; a prefix ending in `/` covers everything under it.
pub fn under(path: &str, prefix: &str, case_insensitive: bool) -> bool {
    let (path, prefix) = if case_insensitive {
        (path.to_ascii_lowercase(), prefix.to_ascii_lowercase())
    } else {
        (path.to_owned(), prefix.to_owned())
    };
    path.strip_prefix(prefix.as_str())
        .is_some_and(|rest| prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
}

fn under_any(path: &str, prefixes: &[String], case_insensitive: bool) -> bool {
    prefixes.iter().any(|p| under(path, p, case_insensitive))
}

/// The queue API and the waiting page always pass (`isWaitingTraffic` in
/// `gate.js`): `/v1/rooms/<room>/…` and `/v1/events/<event>/queue[/…]`.
fn is_queue_api(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("/v1/rooms/") {
        return rest
            .split_once('/')
            .is_some_and(|(room, _)| !room.is_empty());
    }
    if let Some(rest) = path.strip_prefix("/v1/events/")
        && let Some((event, tail)) = rest.split_once('/')
    {
        return !event.is_empty()
            && tail
                .strip_prefix("queue")
                .is_some_and(|t| t.is_empty() || t.starts_with('/'));
    }
    false
}

fn is_waiting_traffic(path: &str, waiting_page: &str, case_insensitive: bool) -> bool {
    let dir = &waiting_page[..waiting_page.rfind('/').map_or(0, |i| i + 1)];
    under(path, waiting_page, case_insensitive)
        || (dir.len() > 1 && under(path, dir, case_insensitive))
        || if case_insensitive {
            is_queue_api(&path.to_ascii_lowercase())
        } else {
            is_queue_api(path)
        }
}

/// The edge's decision (`decide` in `gate.js`) for a request to `path`
/// (normalised here) with the pass `token` at `now` (Unix seconds). `keys`
/// are the room's signing keys read at `key/<room>/<kid>`; only those whose
/// id the entry lists in `kids` count, so a pass signed with a key the room
/// does not name is refused (`UnknownKey`) whatever the caller hands in.
pub fn decide(
    entry: &EdgeEntry,
    keys: &[VwrKey],
    path: &str,
    token: Option<&str>,
    now: i64,
) -> Decision {
    let path = normalize(path);
    let ci = entry.case_insensitive;
    if !entry.active {
        return Decision::Open("room inactive");
    }
    if now < entry.enforce_from {
        return Decision::Open("not enforced yet");
    }
    if !under_any(&path, &entry.protected, ci) {
        return Decision::Open("path not protected");
    }
    if under_any(&path, &entry.bypass, ci) || is_waiting_traffic(&path, &entry.waiting_page, ci) {
        return Decision::Open("bypassed");
    }
    if entry.method == Some(EdgeMethod::Passthrough) {
        return Decision::Open("passthrough");
    }
    let closed = entry.method == Some(EdgeMethod::Reject);
    let serving = entry.serving.serving_at(now);
    let Some(token) = token else {
        if closed {
            return Decision::Closed;
        }
        return Decision::Wait {
            serving,
            number: None,
            refused: None,
        };
    };
    let own: Vec<VwrKey> = keys
        .iter()
        .filter(|k| entry.kids.contains(&k.id))
        .cloned()
        .collect();
    match vwr::verify(&own, token, &entry.room, now) {
        // Those already let in finish what they came for.
        Ok(claims) if claims.number <= serving => Decision::Served {
            number: claims.number,
        },
        _ if closed => Decision::Closed,
        Err(error) => Decision::Wait {
            serving,
            number: None,
            refused: Some(error),
        },
        Ok(claims) => Decision::Wait {
            serving,
            number: Some(claims.number),
            refused: None,
        },
    }
}

/// The segments of the root shard whose shard the edge reads for `path`
/// (normalised): those equal to its first segment ignoring ASCII case, so a
/// `caseInsensitive` room under `/Events` is found from `/events/…`.
pub fn shard_segments(root: &IndexShard, path: &str) -> Vec<String> {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if first.is_empty() {
        return Vec::new();
    }
    root.segments
        .iter()
        .filter(|s| s.to_ascii_lowercase() == first)
        .cloned()
        .collect()
}

/// The room key the path index routes a request for `path` (normalised) on
/// `host` (as [`edge::normalize_host`] gives it; `None`: no `Host` header)
/// to (`findRoom` in `gate.js`): among the routes of the root shard, then of
/// the `shards` read for its segment, those on every host or on `host`, the
/// longest path covering it, where a path that covers it only ignoring case
/// counts if `case_insensitive(room key)` (its entry is usable and says
/// so); equal lengths: a route on the host before one on every host, an
/// exact match before a case-folded one, then index order. `None`: no room,
/// the request passes.
pub fn route(
    root: &IndexShard,
    shards: &[IndexShard],
    host: Option<&str>,
    path: &str,
    case_insensitive: impl Fn(&str) -> bool,
) -> Option<String> {
    let mut found: Vec<(usize, bool, bool, usize, &String)> = root
        .rooms
        .iter()
        .chain(shards.iter().flat_map(|s| s.rooms.iter()))
        .enumerate()
        .filter_map(|(index, (route, room))| {
            let (route_host, prefix) = edge::split_route(route);
            let on_host = match route_host {
                None => true,
                Some(route_host) => Some(route_host) == host,
            };
            (on_host && under(path, prefix, true)).then(|| {
                (
                    // UTF-16 units, as `gate.js` measures `p.length`.
                    prefix.encode_utf16().count(),
                    route_host.is_some(),
                    under(path, prefix, false),
                    index,
                    room,
                )
            })
        })
        .collect();
    // Longest first, on the host before on every host, exact before
    // case-folded, then index order.
    found.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(b.2.cmp(&a.2))
            .then(a.3.cmp(&b.3))
    });
    found
        .into_iter()
        .find(|(_, _, exact, _, room)| *exact || case_insensitive(room))
        .map(|(_, _, _, _, room)| room.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use urr_service_common::edge::SCHEMA_VERSION;
    use urr_service_common::serving::ServingParams;

    pub(crate) const NOW: i64 = 1_765_536_700;
    pub(crate) const ROOM: &str = "urr-demo/aurora-seoul-2026";
    pub(crate) const PATH: &str = "/events/aurora-seoul-2026";

    pub(crate) fn entry() -> EdgeEntry {
        EdgeEntry {
            v: SCHEMA_VERSION,
            room: ROOM.into(),
            active: true,
            enforce_from: NOW - 60,
            protected: vec![PATH.into(), "/api/v1/events/aurora-seoul-2026".into()],
            bypass: vec!["/events/aurora-seoul-2026/static/".into()],
            waiting_page: "/waiting/aurora-seoul-2026".into(),
            // 100 numbers served 60 s after the epoch (10 per 6 s).
            serving: ServingParams {
                start: 0,
                per_interval: 10,
                interval_seconds: 6,
                epoch: NOW - 60,
                paused_at: None,
            },
            kids: vec!["2026-11".into()],
            case_insensitive: false,
            method: None,
            hosts: Vec::new(),
            sold_out: false,
        }
    }

    pub(crate) fn key() -> VwrKey {
        VwrKey::new("2026-11", b"the signing key".to_vec())
    }

    pub(crate) fn pass(number: u64) -> String {
        vwr::sign(&key(), ROOM, number, NOW + 600)
    }

    pub(crate) fn at(entry: &EdgeEntry, path: &str, token: Option<&str>) -> Decision {
        decide(entry, &[key()], path, token, NOW)
    }

    #[test]
    fn a_served_pass_goes_through_and_a_later_number_waits() {
        let entry = entry();
        assert_eq!(entry.serving.serving_at(NOW), 100);
        assert_eq!(
            at(&entry, PATH, Some(&pass(100))),
            Decision::Served { number: 100 }
        );
        assert_eq!(
            at(&entry, &format!("{PATH}/seats"), Some(&pass(7))),
            Decision::Served { number: 7 }
        );
        assert_eq!(
            at(&entry, PATH, Some(&pass(101))),
            Decision::Wait {
                serving: 100,
                number: Some(101),
                refused: None
            }
        );
        assert_eq!(
            at(&entry, PATH, None),
            Decision::Wait {
                serving: 100,
                number: None,
                refused: None
            }
        );
    }

    #[test]
    fn the_entry_switches_the_gate_off_and_on() {
        let mut entry = entry();
        let late = pass(10_000);
        entry.active = false;
        assert_eq!(
            at(&entry, PATH, Some(&late)),
            Decision::Open("room inactive")
        );
        entry.active = true;
        entry.enforce_from = NOW + 1;
        assert_eq!(
            at(&entry, PATH, Some(&late)),
            Decision::Open("not enforced yet")
        );
        entry.enforce_from = NOW;
        assert!(matches!(
            at(&entry, PATH, Some(&late)),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn only_protected_paths_are_gated_and_bypass_and_queue_traffic_pass() {
        let entry = entry();
        for path in ["/events/other", "/waiting/aurora-seoul-2026", "/"] {
            assert_eq!(
                at(&entry, path, None),
                Decision::Open("path not protected"),
                "{path}"
            );
        }
        assert_eq!(
            at(&entry, "/events/aurora-seoul-2026/static/app.js", None),
            Decision::Open("bypassed")
        );
        let mut everything = entry.clone();
        everything.protected = vec!["/".into()];
        for path in [
            "/events/aurora-seoul-2026/static/app.js",
            "/waiting/aurora-seoul-2026?return=/x",
            "/waiting/style.css",
            "/v1/rooms/aurora-seoul-2026/numbers",
            "/v1/events/aurora-seoul-2026/queue",
            "/v1/events/aurora-seoul-2026/queue/me",
        ] {
            assert_eq!(
                at(&everything, path, None),
                Decision::Open("bypassed"),
                "{path}"
            );
        }
        for path in [
            "/v1/events/aurora-seoul-2026/holds",
            "/v1/events/aurora-seoul-2026/queued",
            "/api/v1/events/aurora-seoul-2026",
        ] {
            assert!(
                matches!(at(&everything, path, None), Decision::Wait { .. }),
                "{path}"
            );
        }
    }

    #[test]
    fn a_pass_the_edge_cannot_verify_waits_with_the_reason() {
        let mut entry = entry();
        let refused = |entry: &EdgeEntry, keys: &[VwrKey], token: &str| match decide(
            entry,
            keys,
            PATH,
            Some(token),
            NOW,
        ) {
            Decision::Wait { refused, .. } => refused,
            other => panic!("{other:?}"),
        };
        let other_key = VwrKey::new("2026-11", b"another key".to_vec());
        assert_eq!(
            refused(&entry, &[other_key], &pass(1)),
            Some(VwrError::BadSignature)
        );
        let other_kid = VwrKey::new("2027-01", b"the signing key".to_vec());
        assert_eq!(
            refused(&entry, &[other_kid], &pass(1)),
            Some(VwrError::UnknownKey)
        );
        let expired = vwr::sign(&key(), ROOM, 1, NOW);
        assert_eq!(refused(&entry, &[key()], &expired), Some(VwrError::Expired));
        entry.room = "urr-demo/another-room".into();
        assert_eq!(
            refused(&entry, &[key()], &pass(1)),
            Some(VwrError::WrongRoom)
        );
        assert_eq!(
            refused(&entry, &[key()], "garbage"),
            Some(VwrError::Malformed)
        );
    }

    #[test]
    fn a_key_the_room_does_not_list_is_refused_even_when_handed_in() {
        let mut entry = entry();
        entry.kids = vec!["2026-10".into()];
        assert_eq!(
            decide(&entry, &[key()], PATH, Some(&pass(1)), NOW),
            Decision::Wait {
                serving: 100,
                number: None,
                refused: Some(VwrError::UnknownKey)
            }
        );
    }

    #[test]
    fn uris_are_normalised_as_origins_route_them() {
        for (uri, normal) in [
            ("/%65vents/aurora", "/events/aurora"),
            ("/events/aurora%2dseoul", "/events/aurora-seoul"),
            ("/a%2Fb/%7e%5F%2E", "/a%2Fb/~_."),
            ("//events///aurora", "/events/aurora"),
            ("/events/./aurora", "/events/aurora"),
            ("/static/../events/aurora", "/events/aurora"),
            ("/v1/rooms/x/../../events/a", "/v1/events/a"),
            ("/v1/rooms/x/../../../events/a", "/events/a"),
            ("/%2e%2E/events/%2e/a", "/events/a"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..", "/"),
            ("/", "/"),
            ("/a/", "/a/"),
            ("/x//../events", "/events"),
            ("/%%41%252e%zz%4", "/%A%252e%zz%4"),
            ("/caf%C3%A9/%41", "/caf%C3%A9/A"),
        ] {
            assert_eq!(normalize(uri), normal, "{uri}");
        }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(under("/healthz", "/healthz", false));
        assert!(under("/healthz/x", "/healthz", false));
        assert!(!under("/healthzX", "/healthz", false));
        assert!(under("/static/app.js", "/static/", false));
        assert!(!under("/static", "/static/", false));
        assert!(under("/anything", "/", false));
        assert!(!under("/Events/a", "/events", false));
        assert!(under("/Events/a", "/events", true));
        assert!(under("/events/a", "/EVENTS/", true));
    }
}
