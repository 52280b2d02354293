//! From a WaitingRoom spec change to `UpdateKeys` acknowledged by the
//! KeyValueStore emulator, two ways in one run:
//!
//! 1. each sample one reconcile of a changed room (policy to Redis, shards
//!    read, one batched ETag-checked `UpdateKeys`), with the Kubernetes API
//!    mocked in-process. Baseline, same run: one bare `DescribeKeyValueStore`
//!    + `UpdateKeys` of one key through the same writer;
//! 2. when `KUBECONFIG` is set, end to end through the real operator (the
//!    `urr-operator run` binary, admin KUBECONFIG, watching a fresh
//!    namespace) and the real API server: `kubectl apply` of a changed
//!    `spec.admission` (`usersPerSecond` and `servingRate.perInterval`), then
//!    the same change as a server-side apply patch through a kube client,
//!    each timed until the room's KVS entry read back from the emulator
//!    (polled every 5 ms) shows the new `serving.perInterval`.
//!
//! The propagation margin (a deliberate wait before edges enforce) is not
//! part of these figures.
//!
//! ```sh
//! eval "$(scripts/stack env)"; cargo bench -p urr-operator --bench edge_sync
//! ```

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{Request, Response};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use serde_json::{Value, json};
use urr_crds::{Event, WaitingRoom};
use urr_operator::controller::FixedClock;
use urr_operator::edge::{self, EdgeEntry};
use urr_operator::kvs::{KvsChange, KvsWriter};
use urr_operator::stats::{FixedStats, Observed};
use urr_operator::waiting_room::{FINALIZER, RoomContext, reconcile};

const SAMPLES: usize = 200;
/// Changes through the real operator, per way of applying them.
const CHANGES: usize = 50;
/// How often the KVS entry is read back while waiting for a change.
const POLL: Duration = Duration::from_millis(5);
/// A change not seen at the edge by then counts as missed.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The in-process half: one reconcile per sample, the Kubernetes API mocked.
async fn mock_half() {
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

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let max = samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3;
    format!(
        "p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        max
    )
}

/// Says loudly that half of the benchmark did not run, on both streams (so
/// neither `cargo bench`'s output nor a log of stderr hides it).
fn loud(lines: &[&str]) {
    let bar = "!".repeat(78);
    let text: String = lines.iter().map(|line| format!("!! {line}\n")).collect();
    println!("\n{bar}\n{text}{bar}\n");
    eprintln!("\n{bar}\n{text}{bar}\n");
}

/// CloudFront's control plane on the emulator (where stores are created).
async fn cloudfront() -> aws_sdk_cloudfront::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let config = aws_sdk_cloudfront::config::Builder::from(&shared)
        .endpoint_url(env("URR_KVS_ENDPOINT"))
        .build();
    aws_sdk_cloudfront::Client::from_conf(config)
}

/// Undoes what a failed run leaves when dropped armed (after a panic): the
/// operator process is killed, a WaitingRoom's finalizer (which only the
/// killed operator would have removed) dropped, the namespace deleted.
struct Cleanup {
    namespace: String,
    room: String,
    operator: Option<Child>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut child) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.armed {
            return;
        }
        let (namespace, room) = (&self.namespace, &self.room);
        let unpinned = Command::new("kubectl")
            .args(["-n", namespace, "patch", "waitingrooms.urr.dev", room])
            .args(["--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deleted = Command::new("kubectl")
            .args(["delete", "namespace", namespace, "--wait=false"])
            .stdout(Stdio::null())
            .status();
        if !deleted.is_ok_and(|s| s.success()) || unpinned.is_err() {
            eprintln!(
                "!! clean up by hand: kubectl -n {namespace} patch waitingrooms.urr.dev {room} --type=merge -p '{{\"metadata\":{{\"finalizers\":null}}}}'; kubectl delete namespace {namespace} --wait=false"
            );
        }
    }
}

/// The room with a changed admission: `usersPerSecond` and the tier-1
/// `servingRate.perInterval`, the field the edge entry carries.
fn changed(room: &WaitingRoom, per_interval: u32) -> WaitingRoom {
    let mut room = room.clone();
    room.spec.admission.users_per_second = per_interval / 2;
    room.spec.admission.serving_rate.per_interval = per_interval;
    room
}

/// `kubectl apply -f -` of `room`; when it exited, and the generation it printed.
fn kubectl_apply(namespace: &str, room: &WaitingRoom) -> Result<(Instant, i64), String> {
    let manifest = serde_yaml::to_string(room).map_err(|e| e.to_string())?;
    let mut child = Command::new("kubectl")
        .args(["-n", namespace, "apply", "-f", "-"])
        .args(["-o", "jsonpath={.metadata.generation}"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e} (is the stack environment loaded?)"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(manifest.as_bytes())
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let exited = Instant::now();
    if !output.status.success() {
        return Err(format!(
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let generation = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("kubectl printed no generation: {e}"))?;
    Ok((exited, generation))
}

/// When the room's KVS entry first showed `per_interval` (`None`: not within
/// [`ACK_TIMEOUT`]).
async fn acked(writer: &KvsWriter, key: &str, per_interval: u32) -> Option<Instant> {
    let deadline = Instant::now() + ACK_TIMEOUT;
    while Instant::now() < deadline {
        let value = writer.get(key).await.ok().flatten();
        let entry = value.and_then(|v| serde_json::from_str::<EdgeEntry>(&v).ok());
        if entry.is_some_and(|e| e.serving.per_interval == u64::from(per_interval)) {
            return Some(Instant::now());
        }
        tokio::time::sleep(POLL).await;
    }
    None
}

/// Waits until the operator has recorded `generation` in the room's status
/// (its last write of the reconcile), plus a moment for the reconcile that
/// status write triggers, so no sample overlaps the previous one's tail.
async fn settle(rooms: &Api<WaitingRoom>, name: &str, generation: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let observed = rooms
            .get(name)
            .await
            .ok()
            .and_then(|r| r.status)
            .and_then(|s| s.observed_generation);
        if observed >= Some(generation) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// Change → ack samples of one way of applying a change.
#[derive(Default)]
struct Samples {
    to_ack: Vec<Duration>,
    applied: Vec<Duration>,
    missed: usize,
}

/// The real-operator half.
async fn real_half() {
    // Two rustls providers are linked in (ring, aws-lc-rs): name one, as the binary does.
    urr_service_common::install_tls_provider();
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let version = client
        .apiserver_version()
        .await
        .expect("the API server of KUBECONFIG answers (is the stack up?)");
    support::install_crds(&client).await;

    let suffix = format!("{:08x}", rand::random::<u32>());
    let namespace = format!("urr-bench-edge-{suffix}");
    let name = format!("bench-{suffix}");
    // A store of its own: no other writer's ETag changes (other runs, tests)
    // turn into conflict retries inside the figure.
    let store = format!("urr-bench-{suffix}");
    let cloudfront = cloudfront().await;
    let arn = cloudfront
        .create_key_value_store()
        .name(&store)
        .send()
        .await
        .expect("creating a KeyValueStore in the emulator")
        .key_value_store()
        .map(|s| s.arn().to_owned())
        .expect("the created store's ARN");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.clone()),
                    labels: Some(BTreeMap::from([(
                        "urr.dev/bench".to_owned(),
                        "edge-sync".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .expect("creating the bench namespace");
    let mut cleanup = Cleanup {
        namespace: namespace.clone(),
        room: name.clone(),
        operator: None,
        armed: true,
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    for (secret, key, value) in [
        ("urr-data", "redis-url", env("URR_REDIS_URL")),
        (
            "urr-edge-signing",
            "current",
            "bench-signing-key".to_owned(),
        ),
    ] {
        let object = Secret {
            metadata: ObjectMeta {
                name: Some(secret.to_owned()),
                ..ObjectMeta::default()
            },
            string_data: Some(BTreeMap::from([(key.to_owned(), value)])),
            ..Secret::default()
        };
        secrets
            .create(&PostParams::default(), &object)
            .await
            .expect("creating a Secret");
    }
    // Ten days ahead, so the Event stays Scheduled at its minimum replicas.
    let open = Timestamp::now() + SignedDuration::from_hours(240);
    let mut event: Event =
        serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example");
    event.metadata.name = Some(name.clone());
    event.spec.sales_open_at = Time(open);
    event.spec.sales_close_at = Time(open + SignedDuration::from_hours(7 * 24));
    Api::<Event>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &event)
        .await
        .expect("creating the Event");

    let listen = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port");
    let log_path = std::env::temp_dir().join(format!("urr-bench-edge-{suffix}.log"));
    let log = std::fs::File::create(&log_path).expect("the operator's log file");
    let child = Command::new(env!("CARGO_BIN_EXE_urr-operator"))
        .args(["run", "--namespace", &namespace])
        .args(["--listen", &listen.to_string()])
        .args(["--log-format", "text", "--leader-election", "false"])
        .args(["--aws-endpoint", &env("URR_KVS_ENDPOINT")])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("a second handle on the log"))
        .stderr(log)
        .spawn()
        .expect("starting urr-operator run");
    cleanup.operator = Some(child);

    let mut room: WaitingRoom =
        serde_yaml::from_str(include_str!("../../examples/waitingroom.yaml")).expect("example");
    room.metadata.name = Some(name.clone());
    room.spec.event_ref.name = name.clone();
    // On at once and for good: the entry is active and its serving epoch stays put.
    room.spec.activation.mode = urr_crds::ActivationMode::Always;
    if let Some(edge) = room.spec.edge.as_mut() {
        edge.key_value_store_name = Some(store.clone());
    }
    let rooms: Api<WaitingRoom> = Api::namespaced(client.clone(), &namespace);
    let writer = KvsWriter::new(arn, Some(&env("URR_KVS_ENDPOINT"))).await;
    let key = edge::room_key(&namespace, &name);

    // Warm up: the operator's first reconcile resolves the store by name and
    // connects to Redis; its readiness is the first entry at the edge.
    let first = changed(&room, 500);
    let ns = namespace.clone();
    let (_, generation) = tokio::task::spawn_blocking(move || kubectl_apply(&ns, &first))
        .await
        .expect("the kubectl thread")
        .expect("kubectl apply of the room");
    acked(&writer, &key, 500).await.unwrap_or_else(|| {
        panic!(
            "the operator published no entry within {ACK_TIMEOUT:?}; its log: {}",
            log_path.display()
        )
    });
    settle(&rooms, &name, generation).await;

    let mut by_kubectl = Samples::default();
    for i in 0..CHANGES {
        let per_interval = 501 + i as u32;
        let next = changed(&room, per_interval);
        let ns = namespace.clone();
        let started = Instant::now();
        let apply = tokio::task::spawn_blocking(move || kubectl_apply(&ns, &next));
        let seen = acked(&writer, &key, per_interval).await;
        let (exited, generation) = apply
            .await
            .expect("the kubectl thread")
            .expect("kubectl apply of the room");
        by_kubectl.applied.push(exited - started);
        match seen {
            Some(at) => by_kubectl.to_ack.push(at - started),
            None => by_kubectl.missed += 1,
        }
        settle(&rooms, &name, generation).await;
    }

    let mut by_patch = Samples::default();
    for i in 0..CHANGES {
        let per_interval = 601 + i as u32;
        let patch = json!({
            "apiVersion": "urr.dev/v1alpha1",
            "kind": "WaitingRoom",
            "metadata": {"name": name},
            "spec": {"admission": {
                "usersPerSecond": per_interval / 2,
                "servingRate": {"perInterval": per_interval, "intervalSeconds": 10},
            }},
        });
        let started = Instant::now();
        let (patched, seen) = tokio::join!(
            async {
                let patched = rooms
                    .patch(
                        &name,
                        &PatchParams::apply("urr-bench").force(),
                        &Patch::Apply(&patch),
                    )
                    .await
                    .expect("patching the room");
                (
                    Instant::now(),
                    patched.metadata.generation.unwrap_or_default(),
                )
            },
            acked(&writer, &key, per_interval)
        );
        by_patch.applied.push(patched.0 - started);
        match seen {
            Some(at) => by_patch.to_ack.push(at - started),
            None => by_patch.missed += 1,
        }
        settle(&rooms, &name, patched.1).await;
    }

    // The operator removes the room's keys and policy (its finalizer), then goes.
    rooms
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the room");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && rooms.get_opt(&name).await.ok().flatten().is_some() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(mut child) = cleanup.operator.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    if rooms.get_opt(&name).await.ok().flatten().is_none() {
        match namespaces
            .delete(&namespace, &DeleteParams::default())
            .await
        {
            Ok(_) => cleanup.armed = false,
            Err(error) => eprintln!("deleting namespace {namespace}: {error}"),
        }
    }
    drop(cleanup);
    let etag = cloudfront
        .describe_key_value_store()
        .name(&store)
        .send()
        .await
        .ok()
        .and_then(|d| d.e_tag().map(str::to_owned));
    let removed = match etag {
        Some(etag) => cloudfront
            .delete_key_value_store()
            .name(&store)
            .if_match(etag)
            .send()
            .await
            .is_ok(),
        None => false,
    };
    if !removed {
        eprintln!("!! could not delete the emulator's store {store}");
    }
    let _ = std::fs::remove_file(&log_path);

    println!();
    println!(
        "edge sync through the real operator (urr-operator run, admin KUBECONFIG) and kube-apiserver {} + etcd on loopback:",
        version.git_version
    );
    println!(
        "{CHANGES} changes of spec.admission (usersPerSecond, servingRate.perInterval) each way; the room's KVS entry read back every {} ms until serving.perInterval is the new value",
        POLL.as_millis()
    );
    println!(
        "NOTE: the API server, etcd, the controller-manager, the KVS emulator, kubectl, the operator and this bench share the machine's 2 cores."
    );
    println!(
        "kubectl apply -> KVS entry shows the change     {}",
        summary(by_kubectl.to_ack)
    );
    println!(
        "  kubectl apply alone (start to exit)          {}",
        summary(by_kubectl.applied)
    );
    println!(
        "SSA patch (kube client) -> KVS entry shows it   {}",
        summary(by_patch.to_ack)
    );
    println!(
        "  the patch request alone                      {}",
        summary(by_patch.applied)
    );
    if by_kubectl.missed + by_patch.missed > 0 {
        println!(
            "!! missed (not at the edge within {ACK_TIMEOUT:?}): {} by kubectl, {} by patch",
            by_kubectl.missed, by_patch.missed
        );
    }
}

#[tokio::main]
async fn main() {
    mock_half().await;
    if std::env::var_os("KUBECONFIG").is_none() {
        loud(&[
            "THE REAL-OPERATOR HALF OF THIS BENCHMARK DID NOT RUN: KUBECONFIG is not set.",
            "Only the mocked-API figures above were measured. To run both:",
            "  eval \"$(scripts/stack env)\"; cargo bench -p urr-operator --bench edge_sync",
        ]);
        return;
    }
    real_half().await;
}
