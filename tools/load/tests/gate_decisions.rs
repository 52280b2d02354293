//! The shared decision vectors of the edge gate,
//! `edge-functions/testdata/gate-decisions.json`: a store (index shards, room
//! entries, keys), a viewer request and a time → what the function does.
//! The cases are written here by hand, each with the outcome it must have;
//! the file's outcomes are computed by the Rust twin
//! (`urr_load::gate::function::run`) and checked against `gate.js` by the
//! node tests (`edge-functions/test/gate.test.mjs`), so the two cannot drift.
//! This test fails when the checked-in file is not what the cases give;
//! `URR_WRITE_VECTORS=1 cargo test -p urr-load --test gate_decisions`
//! rewrites it.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use urr_load::gate::function::{self, Outcome, Request};
use urr_service_common::edge::{self, EdgeEntry, IndexShard, SCHEMA_VERSION};
use urr_service_common::serving::ServingParams;
use urr_service_common::tokens::invite::{self, InviteMode};
use urr_service_common::tokens::vwr::{self, VwrKey};

const NOW: i64 = 1_765_537_000;
const AURORA: &str = "urr-demo/aurora-seoul-2026";
const SITE: &str = "urr-demo/site";
const EVIL: &str = "urr-evil/x";
const PAGE: &str = "/events/aurora-seoul-2026";
const AURORA_SECRET: &[u8] = b"aurora-room-signing-key-32-bytes";
const PREVIOUS_SECRET: &[u8] = b"aurora-previous-signing-key-32by";
const SITE_SECRET: &[u8] = b"site-room-signing-key-32-bytes!!";
const EVIL_SECRET: &[u8] = b"a-key-of-a-room-in-another-ns-32";
const MOBILE: &str = "urr-demo/aurora-mobile";
const MOBILE_SECRET: &[u8] = b"mobile-room-signing-key-32-bytes";

fn entry(room: &str, protected: &[&str], bypass: &[&str], page: &str) -> EdgeEntry {
    EdgeEntry {
        v: SCHEMA_VERSION,
        room: room.into(),
        active: true,
        enforce_from: NOW - 60,
        protected: protected.iter().map(|p| (*p).to_owned()).collect(),
        bypass: bypass.iter().map(|p| (*p).to_owned()).collect(),
        waiting_page: page.into(),
        // 100 numbers served at NOW (10 every 6 s for 60 s).
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

/// Two rooms: the sale's page and the API under `/events/…` and `/api/…`,
/// and a room over the whole site (`/`) with a health check and static
/// assets bypassed, each with its own key under its own path.
fn store() -> BTreeMap<String, String> {
    let mut kvs = BTreeMap::new();
    let aurora = entry(
        AURORA,
        &[PAGE, "/api/v1/events/aurora-seoul-2026"],
        &["/events/aurora-seoul-2026/static/"],
        "/waiting/aurora-seoul-2026",
    );
    let site = entry(SITE, &["/"], &["/healthz", "/static/"], "/waiting/site");
    let shard = |rooms: &[(&str, &str)], segments: &[&str]| IndexShard {
        v: 1,
        rooms: rooms
            .iter()
            .map(|(p, r)| ((*p).to_owned(), (*r).to_owned()))
            .collect(),
        segments: segments.iter().map(|s| (*s).to_owned()).collect(),
    };
    let room_key = |id: &str| format!("wr/{id}");
    let put = |kvs: &mut BTreeMap<String, String>, key: String, value: String| {
        kvs.insert(key, value);
    };
    put(
        &mut kvs,
        "wr/p/".into(),
        serde_json::to_string(&shard(&[("/", "wr/urr-demo/site")], &["api", "events"]))
            .expect("json"),
    );
    put(
        &mut kvs,
        "wr/p/events".into(),
        serde_json::to_string(&shard(&[(PAGE, "wr/urr-demo/aurora-seoul-2026")], &[]))
            .expect("json"),
    );
    put(
        &mut kvs,
        "wr/p/api".into(),
        serde_json::to_string(&shard(
            &[(
                "/api/v1/events/aurora-seoul-2026",
                "wr/urr-demo/aurora-seoul-2026",
            )],
            &[],
        ))
        .expect("json"),
    );
    put(
        &mut kvs,
        room_key(AURORA),
        aurora.encode("k").expect("fits"),
    );
    put(&mut kvs, room_key(SITE), site.encode("k").expect("fits"));
    put(
        &mut kvs,
        edge::key_key(AURORA, "2026-11"),
        hex::encode(AURORA_SECRET),
    );
    put(
        &mut kvs,
        edge::key_key(SITE, "2026-11"),
        hex::encode(SITE_SECRET),
    );
    kvs
}

fn sign(secret: &[u8], kid: &str, room: &str, number: u64) -> String {
    vwr::sign(&VwrKey::new(kid, secret.to_vec()), room, number, NOW + 600)
}

fn served() -> String {
    sign(AURORA_SECRET, "2026-11", AURORA, 100)
}

/// Changes the room entry at `wr/<room>` as JSON (shape errors included).
fn edit(kvs: &mut BTreeMap<String, String>, room: &str, change: impl FnOnce(&mut Value)) {
    let key = format!("wr/{room}");
    let mut value: Value = serde_json::from_str(&kvs[&key]).expect("json");
    change(&mut value);
    kvs.insert(key, value.to_string());
}

/// A change to a room entry's JSON.
type Edit = fn(&mut Value);

struct Case {
    name: &'static str,
    /// Which finding of issue 16 (or older behaviour) the vector pins down.
    finding: &'static str,
    kvs: BTreeMap<String, String>,
    request: Request,
    /// `pass <uri>` or `wait <status> <reason>`: checked against what the
    /// twin computes, so a case cannot record a wrong outcome unnoticed.
    expect: &'static str,
}

fn get(uri: &str) -> Request {
    Request {
        uri: uri.into(),
        host: None,
        invite: None,
        cookie: None,
        accept: None,
    }
}

fn with(uri: &str, cookie: String) -> Request {
    Request {
        cookie: Some(cookie),
        ..get(uri)
    }
}

fn case(
    name: &'static str,
    finding: &'static str,
    kvs: BTreeMap<String, String>,
    request: Request,
    expect: &'static str,
) -> Case {
    Case {
        name,
        finding,
        kvs,
        request,
        expect,
    }
}

fn cases() -> Vec<Case> {
    let mut out = vec![
        case(
            "served pass",
            "basics",
            store(),
            with(PAGE, served()),
            "pass /events/aurora-seoul-2026",
        ),
        case("no pass", "basics", store(), get(PAGE), "wait 302 no-token"),
        case(
            "number not served yet",
            "basics",
            store(),
            with(PAGE, sign(AURORA_SECRET, "2026-11", AURORA, 101)),
            "wait 302 not-served",
        ),
        case(
            "API client without a pass",
            "basics",
            store(),
            Request {
                accept: Some("application/json".into()),
                ..get("/api/v1/events/aurora-seoul-2026/holds")
            },
            "wait 429 no-token",
        ),
        case(
            "expired pass",
            "basics",
            store(),
            with(
                PAGE,
                vwr::sign(
                    &VwrKey::new("2026-11", AURORA_SECRET.to_vec()),
                    AURORA,
                    1,
                    NOW,
                ),
            ),
            "wait 302 expired",
        ),
        case(
            "pass of another room signed with that room's key",
            "basics",
            store(),
            with(PAGE, sign(SITE_SECRET, "2026-11", SITE, 1)),
            "wait 302 bad-signature",
        ),
        case(
            "garbage pass",
            "basics",
            store(),
            with(PAGE, "garbage".into()),
            "wait 302 malformed",
        ),
        case(
            "a path only the room over / covers",
            "basics",
            store(),
            get("/api/other"),
            "wait 302 no-token",
        ),
    ];

    // Keys bound to their room.
    let mut evil = store();
    evil.insert(edge::key_key(EVIL, "evil-1"), hex::encode(EVIL_SECRET));
    // What the old operator published for that room: one key namespace for all.
    evil.insert("key/evil-1".into(), hex::encode(EVIL_SECRET));
    out.push(case(
        "forged pass: signed with another room's key, kid not in the room's kids",
        "keys bound to their room",
        evil,
        with(PAGE, sign(EVIL_SECRET, "evil-1", AURORA, 1)),
        "wait 302 unknown-key",
    ));
    let mut same_kid = store();
    same_kid.insert(edge::key_key(EVIL, "2026-11"), hex::encode(EVIL_SECRET));
    // The old shared `key/2026-11`, last written by the other room.
    same_kid.insert("key/2026-11".into(), hex::encode(EVIL_SECRET));
    out.push(case(
        "forged pass: the room's kid, the key at another room's path",
        "keys bound to their room",
        same_kid,
        with(PAGE, sign(EVIL_SECRET, "2026-11", AURORA, 1)),
        "wait 302 bad-signature",
    ));
    for (name, value) in [
        ("empty key", ""),
        ("key that is not hex", "zz"),
        ("key of odd length", "abc"),
    ] {
        let mut kvs = store();
        kvs.insert(edge::key_key(AURORA, "2026-11"), value.into());
        kvs.insert("key/2026-11".into(), value.into());
        out.push(case(
            name,
            "empty key refused",
            kvs,
            with(PAGE, sign(b"", "2026-11", AURORA, 1)),
            "wait 302 unknown-key",
        ));
    }
    let mut rotated = store();
    edit(&mut rotated, AURORA, |e| {
        e["kids"] = json!(["2026-11", "2026-10"])
    });
    rotated.insert(
        edge::key_key(AURORA, "2026-10"),
        hex::encode(PREVIOUS_SECRET),
    );
    out.push(case(
        "pass signed with the previous key the room lists",
        "keys bound to their room",
        rotated.clone(),
        with(PAGE, sign(PREVIOUS_SECRET, "2026-10", AURORA, 5)),
        "pass /events/aurora-seoul-2026",
    ));
    rotated.remove(&edge::key_key(AURORA, "2026-10"));
    out.push(case(
        "kid listed but its key missing",
        "keys bound to their room",
        rotated,
        with(PAGE, sign(PREVIOUS_SECRET, "2026-10", AURORA, 5)),
        "wait 302 unknown-key",
    ));

    // Fail-open, never fail-closed: an entry of the wrong shape passes.
    let shape_errors: Vec<(&str, Edit)> = vec![
        ("entry without serving", |e| {
            e.as_object_mut().map(|o| o.remove("serving"));
        }),
        ("entry without waitingPage", |e| {
            e.as_object_mut().map(|o| o.remove("waitingPage"));
        }),
        ("entry without kids (the old kid)", |e| {
            e.as_object_mut().map(|o| o.remove("kids"));
            e["kid"] = json!("2026-11");
        }),
        ("entry with protected as a string", |e| {
            e["protected"] = json!(PAGE)
        }),
        ("entry with bypass missing", |e| {
            e.as_object_mut().map(|o| o.remove("bypass"));
        }),
        ("entry with a text perInterval", |e| {
            e["serving"]["perInterval"] = json!("10")
        }),
        ("entry with serving null", |e| e["serving"] = Value::Null),
        ("entry with a text caseInsensitive", |e| {
            e["caseInsensitive"] = json!("yes")
        }),
        ("entry of schema version 2", |e| e["v"] = json!(2)),
    ];
    for (name, change) in shape_errors {
        let mut kvs = store();
        edit(&mut kvs, AURORA, change);
        out.push(case(
            name,
            "fail-open on any shape error",
            kvs.clone(),
            get(PAGE),
            "pass /events/aurora-seoul-2026",
        ));
        out.push(case(
            name,
            "fail-open on any shape error",
            kvs,
            with(PAGE, served()),
            "pass /events/aurora-seoul-2026",
        ));
    }
    let mut broken_root = store();
    broken_root.insert("wr/p/".into(), "{not json".into());
    out.push(case(
        "malformed root shard",
        "fail-open",
        broken_root,
        get(PAGE),
        "pass /events/aurora-seoul-2026",
    ));
    let mut no_rooms = store();
    no_rooms.insert("wr/p/".into(), r#"{"v":1}"#.into());
    out.push(case(
        "root shard without rooms",
        "fail-open",
        no_rooms,
        get(PAGE),
        "pass /events/aurora-seoul-2026",
    ));
    let mut off = store();
    edit(&mut off, AURORA, |e| e["active"] = json!(false));
    out.push(case(
        "room off",
        "fail-open",
        off,
        get(PAGE),
        "pass /events/aurora-seoul-2026",
    ));
    let mut later = store();
    edit(&mut later, AURORA, |e| e["enforceFrom"] = json!(NOW + 1));
    out.push(case(
        "before enforceFrom",
        "fail-open",
        later,
        get(PAGE),
        "pass /events/aurora-seoul-2026",
    ));

    // URI normalisation: each is the page, held without a pass.
    for uri in [
        "/%65vents/aurora-seoul-2026",
        "/events/aurora%2Dseoul-2026",
        "/events/aurora%2dseoul-2026",
        "/%45vents/aurora-seoul-2026/..%2F",
        "//events/aurora-seoul-2026",
        "/events//aurora-seoul-2026",
        "/events/./aurora-seoul-2026",
        "/static/../events/aurora-seoul-2026",
        "/waiting/../events/aurora-seoul-2026",
        "/healthz/../events/aurora-seoul-2026",
        "/v1/rooms/x/../../../events/aurora-seoul-2026",
        "/events/aurora-seoul-2026/static/../seats",
        "/%2E%2E/events/aurora-seoul-2026",
        "/static/%2e%2e/events/aurora-seoul-2026",
    ] {
        out.push(case(
            uri_name(uri),
            "URI normalisation",
            store(),
            get(uri),
            "wait 302 no-token",
        ));
    }
    out.push(case(
        "/v1/rooms/x/../../events/aurora-seoul-2026 is /v1/events/…, not the queue API",
        "URI normalisation",
        store(),
        get("/v1/rooms/x/../../events/aurora-seoul-2026"),
        "wait 302 no-token",
    ));
    out.push(case(
        "a served pass on a dot-segment path: the origin gets the normalised URI",
        "URI normalisation",
        store(),
        with("/static/../events/aurora-seoul-2026/seats", served()),
        "pass /events/aurora-seoul-2026/seats",
    ));
    out.push(case(
        "an encoded slash stays encoded",
        "URI normalisation",
        store(),
        get("/static%2F..%2Fevents/aurora-seoul-2026"),
        "wait 302 no-token",
    ));

    // Segment boundaries.
    for (uri, expect) in [
        ("/healthz", "pass /healthz"),
        ("/healthz/live", "pass /healthz/live"),
        ("/healthzX", "wait 302 no-token"),
        ("/static/app.js", "pass /static/app.js"),
        ("/staticX/app.js", "wait 302 no-token"),
        ("/events/aurora-seoul-2026X", "wait 302 no-token"),
        ("/events/aurora-seoul-2026/seats", "wait 302 no-token"),
        (
            "/events/aurora-seoul-2026/static/app.js",
            "pass /events/aurora-seoul-2026/static/app.js",
        ),
        ("/waiting/site", "pass /waiting/site"),
        ("/waiting/site/app.js", "pass /waiting/site/app.js"),
        (
            "/waiting/assets/waiting.js",
            "pass /waiting/assets/waiting.js",
        ),
        ("/v1/rooms/site/numbers", "pass /v1/rooms/site/numbers"),
        ("/v1/rooms/site", "wait 302 no-token"),
        (
            "/v1/events/aurora-seoul-2026/queue",
            "pass /v1/events/aurora-seoul-2026/queue",
        ),
        (
            "/v1/events/aurora-seoul-2026/queue/me",
            "pass /v1/events/aurora-seoul-2026/queue/me",
        ),
        ("/v1/events/aurora-seoul-2026/queueX", "wait 302 no-token"),
        ("/", "wait 302 no-token"),
    ] {
        out.push(case(
            uri_name(uri),
            "segment boundaries",
            store(),
            get(uri),
            expect,
        ));
    }

    // Case.
    for uri in [
        "/Events/aurora-seoul-2026",
        "/HEALTHZ",
        "/Static/app.js",
        "/V1/rooms/site/numbers",
    ] {
        out.push(case(
            uri_name(uri),
            "exact case by default",
            store(),
            get(uri),
            "wait 302 no-token",
        ));
    }
    let mut ci = store();
    edit(&mut ci, AURORA, |e| e["caseInsensitive"] = json!(true));
    edit(&mut ci, SITE, |e| e["caseInsensitive"] = json!(true));
    for (uri, expect) in [
        ("/Events/Aurora-Seoul-2026", "wait 302 no-token"),
        (
            "/EVENTS/aurora-seoul-2026/STATIC/app.js",
            "pass /EVENTS/aurora-seoul-2026/STATIC/app.js",
        ),
        ("/HEALTHZ", "pass /HEALTHZ"),
        ("/HealthzX", "wait 302 no-token"),
        ("/V1/Rooms/site/numbers", "pass /V1/Rooms/site/numbers"),
        ("/Waiting/Site", "pass /Waiting/Site"),
    ] {
        out.push(case(
            uri_name(uri),
            "caseInsensitive",
            ci.clone(),
            get(uri),
            expect,
        ));
    }
    // Room controls at the edge (issue 18): the method and the paused counter.
    let mut passthrough = store();
    edit(&mut passthrough, AURORA, |e| {
        e["method"] = json!("passthrough")
    });
    out.push(case(
        "passthrough: through without a pass",
        "room controls",
        passthrough,
        get(PAGE),
        "pass /events/aurora-seoul-2026",
    ));
    let mut closed = store();
    edit(&mut closed, AURORA, |e| e["method"] = json!("reject"));
    for (name, request, expect) in [
        (
            "reject: no pass, the closed screen",
            get(PAGE),
            "wait 302 closed",
        ),
        (
            "reject: an API client gets 403",
            Request {
                accept: Some("application/json".into()),
                ..get("/api/v1/events/aurora-seoul-2026/holds")
            },
            "wait 403 closed",
        ),
        (
            "reject: a number not served is closed too",
            with(PAGE, sign(AURORA_SECRET, "2026-11", AURORA, 101)),
            "wait 302 closed",
        ),
        (
            "reject: a served pass finishes its purchase",
            with(PAGE, served()),
            "pass /events/aurora-seoul-2026",
        ),
    ] {
        out.push(case(name, "room controls", closed.clone(), request, expect));
    }
    let mut paused = store();
    let paused_at = NOW - 30;
    edit(&mut paused, AURORA, |e| {
        e["serving"]["pausedAt"] = json!(paused_at)
    });
    for (name, number, expect) in [
        (
            "paused: a number served before the pause passes",
            40,
            "pass /events/aurora-seoul-2026",
        ),
        (
            "paused: the counter stands still at pausedAt",
            60,
            "wait 302 not-served",
        ),
    ] {
        out.push(case(
            name,
            "room controls",
            paused.clone(),
            with(PAGE, sign(AURORA_SECRET, "2026-11", AURORA, number)),
            expect,
        ));
    }
    let mut bad_pause = store();
    edit(&mut bad_pause, AURORA, |e| {
        e["serving"]["pausedAt"] = json!("soon")
    });
    out.push(case(
        "a malformed pausedAt: the entry is unusable, fail open",
        "room controls",
        bad_pause,
        get(PAGE),
        "pass /events/aurora-seoul-2026",
    ));
    out.extend(host_cases());
    out.extend(invite_cases());
    out.push(case(
        "caseInsensitive: a served pass on another case",
        "caseInsensitive",
        ci,
        with("/events/AURORA-seoul-2026", served()),
        "pass /events/AURORA-seoul-2026",
    ));
    out
}

fn invite_code(secret: &[u8], kid: &str, room: &str, expires_at: i64) -> String {
    invite::sign(
        &VwrKey::new(kid, secret.to_vec()),
        room,
        "vip-0001",
        InviteMode::Skip,
        expires_at,
    )
    .expect("a code")
}

/// Invite codes (`?urr-invite=`) on held requests: a good one is sent on to
/// the waiting page, which redeems it; a bad one is refused at the edge.
fn invite_cases() -> Vec<Case> {
    let good = invite_code(AURORA_SECRET, "2026-11", AURORA, NOW + 600);
    let with_code = |code: &str, request: Request| Request {
        invite: Some(code.to_owned()),
        ..request
    };
    let json = |request: Request| Request {
        accept: Some("application/json".into()),
        ..request
    };
    [
        (
            "invite: a good code goes on to the waiting page",
            with_code(&good, get(PAGE)),
            "wait 302 invite",
        ),
        (
            "invite: an API client with a good code is told to wait (it redeems at the queue)",
            json(with_code(&good, get(PAGE))),
            "wait 429 invite",
        ),
        (
            "invite: a forged code is refused at the edge",
            json(with_code(
                &invite_code(EVIL_SECRET, "2026-11", AURORA, NOW + 600),
                get(PAGE),
            )),
            "wait 403 invite-bad-signature",
        ),
        (
            "invite: an expired code is refused, the page says why",
            with_code(
                &invite_code(AURORA_SECRET, "2026-11", AURORA, NOW - 1),
                get(PAGE),
            ),
            "wait 302 invite-expired",
        ),
        (
            "invite: another room's code is refused",
            with_code(
                &invite_code(AURORA_SECRET, "2026-11", SITE, NOW + 600),
                get(PAGE),
            ),
            "wait 302 invite-wrong-room",
        ),
        (
            "invite: a code under a key the room does not list is refused unread",
            with_code(
                &invite_code(AURORA_SECRET, "2025-01", AURORA, NOW + 600),
                get(PAGE),
            ),
            "wait 302 invite-unknown-key",
        ),
        (
            "invite: a pass is not a code",
            with_code(&served(), get(PAGE)),
            "wait 302 invite-malformed",
        ),
        (
            "invite: a served pass passes whatever code comes with it",
            with_code("garbage", with(PAGE, served())),
            "pass /events/aurora-seoul-2026",
        ),
    ]
    .into_iter()
    .map(|(name, request, expect)| case(name, "invite codes", store(), request, expect))
    .collect()
}

/// Several hostnames per room (`spec.paths.hosts`): the aurora room holds
/// its page on `shop.example.com`, another room the same path on
/// `m.example.com`, and the site room `/` on every host.
fn host_cases() -> Vec<Case> {
    let mut hosted = store();
    edit(&mut hosted, AURORA, |e| {
        e["hosts"] = json!(["shop.example.com"])
    });
    let mut mobile = entry(MOBILE, &[PAGE], &[], "/waiting/aurora-mobile");
    mobile.hosts = vec!["m.example.com".into()];
    hosted.insert(format!("wr/{MOBILE}"), mobile.encode("k").expect("fits"));
    hosted.insert(edge::key_key(MOBILE, "2026-11"), hex::encode(MOBILE_SECRET));
    hosted.insert(
        "wr/p/events".into(),
        json!({"v": 1, "rooms": [
            [format!("m.example.com{PAGE}"), format!("wr/{MOBILE}")],
            [format!("shop.example.com{PAGE}"), format!("wr/{AURORA}")],
        ]})
        .to_string(),
    );
    let on = |host: &str, request: Request| Request {
        host: Some(host.into()),
        ..request
    };
    [
        (
            "hosts: on its host the room holds its path",
            on("shop.example.com", get(PAGE)),
            "wait 302 no-token",
        ),
        (
            "hosts: its served pass passes on its host",
            on("shop.example.com", with(PAGE, served())),
            "pass /events/aurora-seoul-2026",
        ),
        (
            "hosts: the host is compared without case, port or final dot",
            on("SHOP.Example.com.:443", with(PAGE, served())),
            "pass /events/aurora-seoul-2026",
        ),
        (
            "hosts: the same path on another host is the other room's (its key, not this one's)",
            on("m.example.com", with(PAGE, served())),
            "wait 302 bad-signature",
        ),
        (
            "hosts: the other room's own pass passes there",
            on(
                "m.example.com",
                with(PAGE, sign(MOBILE_SECRET, "2026-11", MOBILE, 100)),
            ),
            "pass /events/aurora-seoul-2026",
        ),
        (
            "hosts: on a host no room names, the room on every host holds it",
            on("www.example.com", with(PAGE, served())),
            "wait 302 bad-signature",
        ),
        (
            "hosts: without a Host header, only rooms on every host",
            get(PAGE),
            "wait 302 no-token",
        ),
    ]
    .into_iter()
    .map(|(name, request, expect)| {
        case(
            name,
            "several hostnames per room",
            hosted.clone(),
            request,
            expect,
        )
    })
    .collect()
}

fn uri_name(uri: &'static str) -> &'static str {
    uri
}

fn summary(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass { uri } => format!("pass {uri}"),
        Outcome::Wait { status, reason, .. } => format!("wait {status} {reason}"),
    }
}

fn generate() -> Value {
    let mut vectors = Vec::new();
    let mut wrong = Vec::new();
    for case in cases() {
        let outcome = function::run(|key| case.kvs.get(key).cloned(), &case.request, NOW);
        if summary(&outcome) != case.expect {
            wrong.push(format!(
                "{}: {} (expected {})",
                case.name,
                summary(&outcome),
                case.expect
            ));
        }
        vectors.push(json!({
            "name": case.name,
            "finding": case.finding,
            "now": NOW,
            "kvs": case.kvs,
            "request": case.request,
            "expect": outcome,
        }));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    json!({
        "comment": "Generated by tools/load/tests/gate_decisions.rs (URR_WRITE_VECTORS=1 cargo test -p urr-load --test gate_decisions). Read by edge-functions/test/gate.test.mjs. Do not edit.",
        "vectors": vectors,
    })
}

#[test]
fn the_checked_in_decision_vectors_are_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../edge-functions/testdata/gate-decisions.json"
    );
    let expected = format!(
        "{}\n",
        serde_json::to_string_pretty(&generate()).expect("json")
    );
    if std::env::var_os("URR_WRITE_VECTORS").is_some() {
        std::fs::write(path, &expected).expect("writing the vectors");
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "{path} is not what the cases give; run URR_WRITE_VECTORS=1 cargo test -p urr-load --test gate_decisions"
    );
}
