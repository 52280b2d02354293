//! Reconciles 1,000 Events against an in-process mock API server that answers
//! every request at once, and prints reconciles/s, latency percentiles and
//! the process's resident memory afterwards with the 1,000 Events held (the
//! controller's cache; children are watched as metadata-only triggers and not
//! cached). Baseline, same run:
//! the same number of server-side apply requests sent straight through the
//! same client, without reconcile logic.
//!
//! ```sh
//! cargo bench -p urr-operator --bench reconcile
//! ```

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::{Request, Response};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::Value;
use urr_crds::Event;
use urr_operator::children::{self, Defaults, ServiceKind};
use urr_operator::controller::{Context, FixedClock, reconcile};
use urr_operator::metrics::OperatorMetrics;
use urr_operator::stats::{FixedStats, Observed};

const EVENTS: usize = 1_000;
const CONCURRENCY: usize = 16;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().to_owned())
            })
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A mock API server: echoes applied objects; answers a status patch with
/// the template Event renamed, plus the new status (so the mock itself keeps
/// no per-Event state that would count as the operator's memory).
fn mock_client(template: Arc<Value>) -> Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let template = template.clone();
        async move {
            let path = request.uri().path().to_owned();
            let bytes = request
                .into_body()
                .collect_bytes()
                .await
                .unwrap_or_default();
            let reply = if path.ends_with("/status") {
                let name = path
                    .trim_end_matches("/status")
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let patch: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let mut event = (*template).clone();
                event["metadata"]["name"] = Value::String(name);
                event["status"] = patch["status"].clone();
                serde_json::to_vec(&event).unwrap_or_default()
            } else {
                bytes.to_vec()
            };
            Ok::<_, Infallible>(Response::new(Body::from(reply)))
        }
    });
    Client::new(service, "urr-demo")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rss_start = rss_bytes();
    let template: Event =
        serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example");
    let events: Vec<Event> = (0..EVENTS)
        .map(|i| {
            let mut event = template.clone();
            event.metadata.name = Some(format!("event-{i:04}"));
            event.metadata.namespace = Some("urr-demo".to_owned());
            event.metadata.uid = Some(format!("00000000-0000-4000-8000-{i:012}"));
            event.metadata.generation = Some(1);
            event
        })
        .collect();
    let client = mock_client(Arc::new(
        serde_json::to_value(&events[0]).unwrap_or_default(),
    ));
    let now: Timestamp = template.spec.sales_open_at.0 - SignedDuration::from_secs(1200);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "urr-operator".into(),
            instance: None,
        },
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        recorder,
        Defaults::default(),
        Arc::new(FixedStats(Observed::default())),
        Arc::new(FixedClock(Mutex::new(now))),
        Arc::new(OperatorMetrics::new()),
    ));

    // Baseline: 13 server-side applies per Event (the reconcile's request count) and nothing else.
    let baseline_started = Instant::now();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "urr-demo");
    let built = children::build(
        &events[0],
        ServiceKind::Queue,
        2,
        &Defaults::default(),
        None,
    )
    .expect("build");
    let baseline: Vec<Duration> = futures::stream::iter(0..EVENTS)
        .map(|_| {
            let (api, object) = (configmaps.clone(), built.config_map.clone());
            async move {
                let t = Instant::now();
                for _ in 0..13 {
                    let _ = api
                        .patch(
                            "x",
                            &PatchParams::apply("urr-operator").force(),
                            &Patch::Apply(&object),
                        )
                        .await;
                }
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let baseline_elapsed = baseline_started.elapsed();

    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(events.iter().cloned())
        .map(|event| {
            let ctx = ctx.clone();
            async move {
                let t = Instant::now();
                reconcile(Arc::new(event), ctx).await.expect("reconcile");
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let mut baseline_sorted = baseline;
    baseline_sorted.sort_unstable();

    // The operator's caches: the Events (the controller's reflector store,
    // here `events`, still alive). Owned Deployments are watched through
    // kube's `metadata_watcher` as triggers only, so no child is cached.
    let rss_after = rss_bytes();
    let held = events.len();

    println!(
        "urr-operator reconcile benchmark: {EVENTS} Events, {CONCURRENCY} in flight, 2 worker threads"
    );
    println!(
        "reconcile (12 applies + status + event)   {:>8.0} reconciles/s   p50 {:>6.2} ms   p99 {:>6.2} ms   (target >= 200/s)",
        EVENTS as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "baseline: 13 bare applies per Event       {:>8.0} per s          p50 {:>6.2} ms   p99 {:>6.2} ms",
        EVENTS as f64 / baseline_elapsed.as_secs_f64(),
        percentile(&baseline_sorted, 0.5).as_secs_f64() * 1e3,
        percentile(&baseline_sorted, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "resident memory: {:.1} MB at start, {:.1} MB after {EVENTS} reconciles holding {held} Events   (target < 50 MB)",
        rss_start as f64 / 1e6,
        rss_after as f64 / 1e6,
    );
}
