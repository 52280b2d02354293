//! The WaitingRoom controller end to end on this machine: the Kubernetes API
//! is a mock server that asserts every request, Redis and the CloudFront
//! KeyValueStore are the real ones of the local stack (`scripts/stack up`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use redis::AsyncCommands;
use serde_json::{Value, json};
use urr_crds::{Event, WaitingRoom};
use urr_operator::controller::FixedClock;
use urr_operator::kvs::KvsWriter;
use urr_operator::scaling::Load;
use urr_operator::stats::{FixedStats, Observed};
use urr_operator::waiting_room::{FINALIZER, RoomContext, reconcile};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(scripts/stack env)\"` (scripts/test does)")
    })
}

/// A unique event name per test run, so runs never share Redis keys.
fn event_name() -> String {
    format!(
        "wr-test-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000)
            .unwrap_or(0)
    )
}

fn event(name: &str) -> Value {
    let mut event: Event =
        serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example");
    event.metadata.name = Some(name.to_owned());
    event.metadata.namespace = Some("urr-demo".to_owned());
    serde_json::to_value(event).expect("json")
}

fn room(name: &str, deleting: bool) -> WaitingRoom {
    let mut room: WaitingRoom =
        serde_yaml::from_str(include_str!("../../examples/waitingroom.yaml")).expect("example");
    room.metadata.name = Some(name.to_owned());
    room.metadata.namespace = Some("urr-demo".to_owned());
    room.metadata.uid = Some("00000000-0000-4000-8000-00000000abcd".to_owned());
    room.metadata.generation = Some(3);
    room.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
    room.spec.event_ref.name = name.to_owned();
    room.spec.activation.mode = urr_crds::ActivationMode::Always;
    room.spec.paths.protected = vec![format!("/events/{name}"), format!("/api/v1/events/{name}")];
    if let Some(edge) = room.spec.edge.as_mut() {
        edge.key_value_store_name = Some("urr-local".to_owned());
    }
    if deleting {
        room.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    }
    room
}

fn secret(name: &str, key: &str, value: &str) -> Value {
    use base64::Engine;
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "urr-demo"},
           "data": {key: base64::engine::general_purpose::STANDARD.encode(value)}})
}

/// Answers `expected` (method, path, reply) in order; returns the bodies sent.
async fn serve(mut handle: Handle, expected: Vec<(Method, String, Value)>) -> Vec<Value> {
    let mut bodies = Vec::new();
    for (method, path, reply) in expected {
        let (request, respond) =
            tokio::time::timeout(Duration::from_secs(20), handle.next_request())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {method} {path}"))
                .unwrap_or_else(|| panic!("client gone before {method} {path}"));
        assert_eq!(
            (request.method(), request.uri().path()),
            (&method, path.as_str())
        );
        let bytes = request.into_body().collect_bytes().await.expect("body");
        bodies.push(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
        respond.send_response(
            Response::builder()
                .status(200)
                .body(Body::from(serde_json::to_vec(&reply).expect("json")))
                .expect("response"),
        );
    }
    if let Ok(Some((request, _))) =
        tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await
    {
        panic!("unexpected request: {} {}", request.method(), request.uri());
    }
    bodies
}

fn context(client: Client, load: Option<Load>) -> Arc<RoomContext> {
    Arc::new(RoomContext::new(
        client,
        Arc::new(FixedStats(Observed {
            load,
            seats: None,
            room: None,
        })),
        Arc::new(FixedClock(Mutex::new(Timestamp::now()))),
        Some(env("URR_KVS_ENDPOINT")),
    ))
}

#[tokio::test]
async fn applying_a_room_writes_the_policy_publishes_the_edge_and_deleting_it_removes_both() {
    let name = event_name();
    let base = "/apis/urr.dev/v1alpha1/namespaces/urr-demo";
    let get = |path: String, reply: Value| (Method::GET, path, reply);
    let redis_secret = || {
        get(
            "/api/v1/namespaces/urr-demo/secrets/urr-data".into(),
            secret("urr-data", "redis-url", &env("URR_REDIS_URL")),
        )
    };

    // What every reconcile of the room reads: its Event and the two Secrets.
    let reads = vec![
        get(format!("{base}/events/{name}"), event(&name)),
        redis_secret(),
        get(
            "/api/v1/namespaces/urr-demo/secrets/urr-edge-signing".into(),
            secret(
                "urr-edge-signing",
                "current",
                "edge-signing-key-0123456789abcdef",
            ),
        ),
    ];

    // Apply.
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(
        Client::new(service, "urr-demo"),
        Some(Load {
            queue_depth: 400,
            active_users: 100,
            arrivals_per_second: 0,
        }),
    );
    let server = tokio::spawn(serve(
        handle,
        reads
            .iter()
            .cloned()
            .chain([(
                Method::PATCH,
                format!("{base}/waitingrooms/{name}/status"),
                serde_json::to_value(room(&name, false)).expect("json"),
            )])
            .collect(),
    ));
    let action = reconcile(Arc::new(room(&name, false)), ctx.clone())
        .await
        .expect("reconcile");
    let bodies = server.await.expect("server");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(urr_operator::waiting_room::FOLLOW),
        "Always: nothing time-driven, but an active room follows the queue's figures"
    );
    let status = &bodies[3]["status"];
    assert_eq!(status["active"], true);
    assert_eq!(status["queueDepth"], 400);
    assert_eq!(status["estimatedWaitSeconds"], 2, "400 waiting at 200/s");
    let synced = condition(status, "EdgeSynced");
    assert_eq!(synced["status"], "True", "{status}");
    assert_eq!(status["edgeSync"]["syncedGeneration"], 3);

    // Reconciled again with the status it wrote (as the watch delivers it):
    // the edge already holds the entry, so neither the store nor the status
    // is written. (Each status write is a watch event; rewriting the sync
    // record every time reconciled a real room about once a second.)
    let mut synced_room = room(&name, false);
    synced_room.status = Some(serde_json::from_value(status.clone()).expect("status"));
    let etag_before = KvsWriter::new(&env("URR_KVS_ARN"), Some(&env("URR_KVS_ENDPOINT")))
        .await
        .etag()
        .await
        .expect("etag");
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let again = context(
        Client::new(service, "urr-demo"),
        Some(Load {
            queue_depth: 400,
            active_users: 100,
            arrivals_per_second: 0,
        }),
    );
    let server = tokio::spawn(serve(handle, reads.clone()));
    reconcile(Arc::new(synced_room), again)
        .await
        .expect("second reconcile");
    server.await.expect("no status write on a second reconcile");
    let etag_after = KvsWriter::new(&env("URR_KVS_ARN"), Some(&env("URR_KVS_ENDPOINT")))
        .await
        .etag()
        .await
        .expect("etag");
    assert_eq!(
        etag_before, etag_after,
        "the second reconcile wrote the store"
    );

    // The queue's Redis hash holds the policy.
    let mut redis = redis::Client::open(env("URR_REDIS_URL"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let policy: std::collections::HashMap<String, String> = redis
        .hgetall(format!("urr:{{{name}}}:policy"))
        .await
        .expect("policy");
    assert_eq!(
        policy.get("usersPerSecond").map(String::as_str),
        Some("200")
    );
    assert_eq!(
        policy.get("maxActiveUsers").map(String::as_str),
        Some("1000")
    );
    assert_eq!(policy.get("active").map(String::as_str), Some("1"));
    let serving: std::collections::HashMap<String, String> = redis
        .hgetall(format!("urr:{{{name}}}:edge"))
        .await
        .expect("serving");
    assert_eq!(serving.get("perInterval").map(String::as_str), Some("500"));

    // The KeyValueStore holds the entry, the shard and the key, as the gate reads them.
    let kvs = KvsWriter::new(env("URR_KVS_ARN"), Some(&env("URR_KVS_ENDPOINT"))).await;
    let entry: Value = serde_json::from_str(
        &kvs.get(&format!("wr/urr-demo/{name}"))
            .await
            .expect("get")
            .expect("entry"),
    )
    .expect("json");
    assert_eq!(entry["room"], format!("urr-demo/{name}"));
    assert_eq!(entry["active"], true);
    assert_eq!(entry["waitingPage"], format!("/waiting/{name}"));
    assert!(
        entry["enforceFrom"]
            .as_i64()
            .is_some_and(|t| t >= Timestamp::now().as_second() + 25),
        "published in the future by the margin"
    );
    let shard = kvs.get("wr/p/events").await.expect("get").expect("shard");
    assert!(shard.contains(&format!("/events/{name}")), "{shard}");
    let root = kvs.get("wr/p/").await.expect("get").expect("root");
    assert!(
        root.contains("\"events\"") && root.contains("\"api\""),
        "{root}"
    );
    assert_eq!(
        kvs.get(&format!("key/urr-demo/{name}/2026-11"))
            .await
            .expect("get")
            .as_deref(),
        Some(hex::encode("edge-signing-key-0123456789abcdef").as_str())
    );

    // Delete: the finalizer removes the entry, the shards' mention and the policy, then itself.
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "urr-demo"), None);
    let server = tokio::spawn(serve(
        handle,
        vec![
            get(format!("{base}/events/{name}"), event(&name)),
            redis_secret(),
            (
                Method::PATCH,
                format!("{base}/waitingrooms/{name}"),
                serde_json::to_value(room(&name, true)).expect("json"),
            ),
        ],
    ));
    reconcile(Arc::new(room(&name, true)), ctx)
        .await
        .expect("cleanup");
    let bodies = server.await.expect("server");
    assert!(
        bodies[2].to_string().contains("finalizers"),
        "the finalizer is removed: {}",
        bodies[2]
    );
    assert_eq!(
        kvs.get(&format!("wr/urr-demo/{name}")).await.expect("get"),
        None
    );
    let shard = kvs
        .get("wr/p/events")
        .await
        .expect("get")
        .unwrap_or_default();
    assert!(!shard.contains(&format!("/events/{name}")), "{shard}");
    let exists: bool = redis
        .exists(format!("urr:{{{name}}}:policy"))
        .await
        .expect("exists");
    assert!(!exists, "the policy is gone");
}

#[tokio::test]
async fn a_missing_event_is_reported_and_retried() {
    let name = event_name_fixed();
    let base = "/apis/urr.dev/v1alpha1/namespaces/urr-demo";
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "urr-demo"), None);
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
    let mut handle = handle;
    let server = tokio::spawn(async move {
        let (request, respond) = handle.next_request().await.expect("GET event");
        assert_eq!(request.uri().path(), format!("{base}/events/{name}"));
        respond.send_response(
            Response::builder()
                .status(404)
                .body(Body::from(serde_json::to_vec(&not_found).expect("json")))
                .expect("response"),
        );
        let (request, respond) = handle.next_request().await.expect("status");
        assert_eq!(request.method(), Method::PATCH);
        let bytes = request.into_body().collect_bytes().await.expect("body");
        respond.send_response(
            Response::builder()
                .status(200)
                .body(Body::from(
                    serde_json::to_vec(&room(&name, false)).expect("json"),
                ))
                .expect("response"),
        );
        serde_json::from_slice::<Value>(&bytes).expect("json")
    });
    let action = reconcile(Arc::new(room(&event_name_fixed(), false)), ctx)
        .await
        .expect("reconcile");
    let body = server.await.expect("server");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(10))
    );
    let found = condition(&body["status"], "EventFound");
    assert_eq!(
        (found["status"].as_str(), found["reason"].as_str()),
        (Some("False"), Some("EventNotFound"))
    );
}

fn event_name_fixed() -> String {
    "wr-missing".to_owned()
}

/// The condition `type_` of a status written by the reconcile.
fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

#[tokio::test]
async fn an_unreachable_store_is_a_condition_and_a_retry_not_a_crash() {
    let name = event_name();
    let base = "/apis/urr.dev/v1alpha1/namespaces/urr-demo";
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    // Nothing listens on port 9: every AWS call fails.
    let ctx = Arc::new(RoomContext::new(
        Client::new(service, "urr-demo"),
        Arc::new(FixedStats(Observed::default())),
        Arc::new(FixedClock(Mutex::new(Timestamp::now()))),
        Some("http://127.0.0.1:9".to_owned()),
    ));
    let server = tokio::spawn(serve(
        handle,
        vec![
            (Method::GET, format!("{base}/events/{name}"), event(&name)),
            (
                Method::GET,
                "/api/v1/namespaces/urr-demo/secrets/urr-data".into(),
                secret("urr-data", "redis-url", &env("URR_REDIS_URL")),
            ),
            (
                Method::PATCH,
                format!("{base}/waitingrooms/{name}/status"),
                serde_json::to_value(room(&name, false)).expect("json"),
            ),
        ],
    ));
    let action = reconcile(Arc::new(room(&name, false)), ctx)
        .await
        .expect("reconcile");
    let bodies = server.await.expect("server");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(10))
    );
    let status = &bodies[2]["status"];
    let synced = condition(status, "EdgeSynced");
    assert_eq!(
        (synced["status"].as_str(), synced["reason"].as_str()),
        (Some("False"), Some("PublishFailed"))
    );
    let ready = condition(status, "Ready");
    assert_eq!(ready["status"], "False");
    // The policy still reached the queue: admission works without the edge.
    let mut redis = redis::Client::open(env("URR_REDIS_URL"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let active: Option<String> = redis
        .hget(format!("urr:{{{name}}}:policy"), "active")
        .await
        .expect("policy");
    assert_eq!(active.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_signing_key_under_32_bytes_is_refused_with_a_condition_and_not_published() {
    let name = event_name();
    let base = "/apis/urr.dev/v1alpha1/namespaces/urr-demo";
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "urr-demo"), None);
    let server = tokio::spawn(serve(
        handle,
        vec![
            (Method::GET, format!("{base}/events/{name}"), event(&name)),
            (
                Method::GET,
                "/api/v1/namespaces/urr-demo/secrets/urr-data".into(),
                secret("urr-data", "redis-url", &env("URR_REDIS_URL")),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/urr-demo/secrets/urr-edge-signing".into(),
                // 31 bytes: one short of an HMAC-SHA256 key.
                secret("urr-edge-signing", "current", &"k".repeat(31)),
            ),
            (
                Method::PATCH,
                format!("{base}/waitingrooms/{name}/status"),
                serde_json::to_value(room(&name, false)).expect("json"),
            ),
        ],
    ));
    let action = reconcile(Arc::new(room(&name, false)), ctx)
        .await
        .expect("reconcile");
    let bodies = server.await.expect("server");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(10))
    );
    for type_ in ["EdgeSynced", "Ready"] {
        let condition = condition(&bodies[3]["status"], type_);
        assert_eq!(condition["status"], "False", "{type_}");
        assert_eq!(condition["reason"], "WeakSigningKey", "{type_}");
        let message = condition["message"].as_str().unwrap_or_default();
        assert!(message.contains("31 bytes"), "{message}");
        assert!(!message.contains(&"k".repeat(31)), "the key never shows");
    }
    let kvs = KvsWriter::new(env("URR_KVS_ARN"), Some(&env("URR_KVS_ENDPOINT"))).await;
    assert_eq!(
        kvs.get(&format!("wr/urr-demo/{name}")).await.expect("get"),
        None,
        "nothing is published with a weak key"
    );
}
