//! From a WaitingRoom spec change to `UpdateKeys` acknowledged by the
//! KeyValueStore emulator: each sample is one reconcile of a changed room
//! (policy to Redis, shards read, one batched ETag-checked `UpdateKeys`),
//! with the Kubernetes API mocked in-process. Baseline, same run: one bare
//! `DescribeKeyValueStore` + `UpdateKeys` of one key through the same writer.
//! The propagation margin (a deliberate wait before edges enforce) is not
//! part of this figure.
//!
//! ```sh
//! eval "$(scripts/stack env)"; cargo bench -p urr-operator --bench edge_sync
//! ```

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{Request, Response};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use urr_crds::{Event, WaitingRoom};
use urr_operator::controller::FixedClock;
use urr_operator::kvs::{KvsChange, KvsWriter};
use urr_operator::stats::{FixedStats, Observed};
use urr_operator::waiting_room::{FINALIZER, RoomContext, reconcile};

const SAMPLES: usize = 200;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: eval \"$(scripts/stack env)\""))
}

fn secret(key: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {key: base64::engine::general_purpose::STANDARD.encode(value)}})
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
        .as_secs_f64()
        * 1e3
}

#[tokio::main]
async fn main() {
    let mut event: Event =
        serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example");
    event.metadata.name = Some("bench-edge".into());
    event.metadata.namespace = Some("urr-demo".into());
    let mut room: WaitingRoom =
        serde_yaml::from_str(include_str!("../../examples/waitingroom.yaml")).expect("example");
    room.metadata.name = Some("bench-edge".into());
    room.metadata.namespace = Some("urr-demo".into());
    room.metadata.finalizers = Some(vec![FINALIZER.into()]);
    room.spec.event_ref.name = "bench-edge".into();
    room.spec.activation.mode = urr_crds::ActivationMode::Always;
    if let Some(edge) = room.spec.edge.as_mut() {
        edge.key_value_store_name = Some("urr-local".into());
    }
    let replies = Arc::new((
        serde_json::to_vec(&event).expect("json"),
        serde_json::to_vec(&secret("redis-url", &env("URR_REDIS_URL"))).expect("json"),
        serde_json::to_vec(&secret("current", "bench-signing-key")).expect("json"),
        serde_json::to_vec(&room).expect("json"),
    ));
    let service = tower::service_fn(move |request: Request<Body>| {
        let replies = replies.clone();
        async move {
            let path = request.uri().path().to_owned();
            let body = if path.contains("/events/") {
                replies.0.clone()
            } else if path.ends_with("/secrets/urr-data") {
                replies.1.clone()
            } else if path.contains("/secrets/") {
                replies.2.clone()
            } else {
                replies.3.clone()
            };
            Ok::<_, Infallible>(Response::new(Body::from(body)))
        }
    });
    let ctx = Arc::new(RoomContext::new(
        Client::new(service, "urr-demo"),
        Arc::new(FixedStats(Observed::default())),
        Arc::new(FixedClock(Mutex::new(Timestamp::now()))),
        Some(env("URR_KVS_ENDPOINT")),
    ));
    // Warm up: resolve the store by name, connect to Redis.
    reconcile(Arc::new(room.clone()), ctx.clone())
        .await
        .expect("reconcile");

    let mut changes = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let mut changed = room.clone();
        changed.spec.admission.users_per_second = 100 + i as u32;
        changed.metadata.generation = Some(i as i64 + 2);
        let started = Instant::now();
        reconcile(Arc::new(changed), ctx.clone())
            .await
            .expect("reconcile");
        changes.push(started.elapsed());
    }
    let writer = KvsWriter::new(env("URR_KVS_ARN"), Some(&env("URR_KVS_ENDPOINT"))).await;
    let mut bare = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let started = Instant::now();
        writer
            .apply(&[KvsChange::Put {
                key: "bench/bare".into(),
                value: i.to_string(),
            }])
            .await
            .expect("apply");
        bare.push(started.elapsed());
    }
    writer
        .apply(&[KvsChange::Delete {
            key: "bench/bare".into(),
        }])
        .await
        .expect("clean up");
    changes.sort_unstable();
    bare.sort_unstable();
    println!("edge sync: {SAMPLES} WaitingRoom spec changes against the KVS emulator on loopback");
    println!(
        "spec change -> UpdateKeys acknowledged   p50 {:>7.2} ms   p99 {:>7.2} ms   (target p99 <= 1000 ms)",
        percentile(&changes, 0.5),
        percentile(&changes, 0.99)
    );
    println!(
        "baseline: bare describe + UpdateKeys    p50 {:>7.2} ms   p99 {:>7.2} ms",
        percentile(&bare, 0.5),
        percentile(&bare, 0.99)
    );
}
