//! Reconciles 1,000 Events twice over, in one run:
//!
//! 1. against an in-process mock API server that answers every request at
//!    once: reconciles/s, latency percentiles and the process's resident
//!    memory afterwards with the 1,000 Events held (the controller's cache;
//!    children are watched as metadata-only triggers and not cached);
//! 2. when `KUBECONFIG` is set, against that real API server (the local
//!    stack's kube-apiserver and etcd): 1,000 Events created in a fresh
//!    namespace, each reconciled once (12 server-side applies that create the
//!    children, a status write, a Kubernetes Event), then all of them again as
//!    the controller would after its watch delivered the written status (the
//!    quiet reconcile: 12 applies the server finds unchanged, nothing else).
//!    What the quiet pass wrote after all is counted from the objects'
//!    resourceVersions and `urr-operator` managedFields. The namespace allows
//!    no ReplicaSets (a ResourceQuota), so the 3,000 Deployments start no pods.
//!    Without `KUBECONFIG` this half is skipped, and the output says so loudly.
//!
//! `URR_BENCH_STRIP_MANAGED_FIELDS=1` clears the managedFields of the Events
//! the real-server half holds, to show what they cost in resident memory.
//!
//! Baselines, same run: the same number of server-side applies of a
//! ConfigMap sent straight through the same client, without reconcile logic
//! (against the real server once as writes, once as no-ops).
//!
//! ```sh
//! eval "$(scripts/stack env)"; cargo bench -p urr-operator --bench reconcile
//! ```

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::{Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota, ResourceQuotaSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;
use urr_crds::Event;
use urr_operator::children::{self, Defaults, ServiceKind};
use urr_operator::controller::{Context, FixedClock, SystemClock, reconcile};
use urr_operator::metrics::OperatorMetrics;
use urr_operator::stats::{FixedStats, Observed};

const EVENTS: usize = 1_000;
const CONCURRENCY: usize = 16;
/// Requests per Event in the baselines: a reconcile's 12 applies and its status write.
const APPLIES_PER_EVENT: usize = 13;
/// Field manager of what the bench itself writes (CRDs excepted).
const BENCH_MANAGER: &str = "urr-bench";

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

/// Throughput and latency of one timed pass.
struct Pass {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
    first_error: Option<String>,
}

impl Pass {
    fn cell(&self) -> String {
        format!(
            "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
            self.per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )
    }

    /// Failed items are timed too, so a pass that failed says so here.
    fn warn_errors(&self, what: &str) {
        if self.errors > 0 {
            println!(
                "!! {what}: {} of the timed items failed (first: {})",
                self.errors,
                self.first_error.as_deref().unwrap_or_default()
            );
        }
    }
}

/// Runs `work` for each item, [`CONCURRENCY`] at a time, timing each.
async fn timed<I, F, Fut, E>(items: I, work: F) -> Pass
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let started = Instant::now();
    let results: Vec<(Duration, Result<(), String>)> = futures::stream::iter(items)
        .map(|item| {
            let future = work(item);
            async move {
                let t = Instant::now();
                let result = future.await.map_err(|e| e.to_string());
                (t.elapsed(), result)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    latencies.sort_unstable();
    let errors: Vec<String> = results.into_iter().filter_map(|(_, r)| r.err()).collect();
    Pass {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
    }
}

/// [`APPLIES_PER_EVENT`] server-side applies of `object` in a row, through
/// `api`, with `vary` run before each (a changed value makes it a write).
async fn applies(
    api: Api<ConfigMap>,
    mut object: ConfigMap,
    vary: impl Fn(&mut ConfigMap, usize),
) -> Result<(), kube::Error> {
    let name = object.name_any();
    for j in 0..APPLIES_PER_EVENT {
        vary(&mut object, j);
        api.patch(
            &name,
            &PatchParams::apply(BENCH_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await?;
    }
    Ok(())
}

fn context(client: Client, clock: Arc<dyn urr_operator::controller::Clock>) -> Arc<Context> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "urr-operator".into(),
            instance: None,
        },
    );
    Arc::new(Context::new(
        client,
        recorder,
        Defaults::default(),
        Arc::new(FixedStats(Observed::default())),
        clock,
        Arc::new(OperatorMetrics::new()),
    ))
}

fn example_event() -> Event {
    serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example")
}

struct MockFigures {
    reconcile: Pass,
    baseline: Pass,
    rss_start: u64,
    rss_after: u64,
}

/// The in-process half: nothing but the operator's own work is timed.
async fn mock_half() -> MockFigures {
    let rss_start = rss_bytes();
    let template = example_event();
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
    let ctx = context(client.clone(), Arc::new(FixedClock(Mutex::new(now))));

    // Baseline: 13 server-side applies per Event (the reconcile's request count) and nothing else.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "urr-demo");
    let mut built = children::build(
        &events[0],
        ServiceKind::Queue,
        2,
        &Defaults::default(),
        None,
    )
    .expect("build")
    .config_map;
    built.metadata.name = Some("x".into());
    let baseline = timed(0..EVENTS, |_| {
        applies(configmaps.clone(), built.clone(), |_, _| {})
    })
    .await;

    let reconcile = timed(events.iter().cloned(), |event| {
        let ctx = ctx.clone();
        async move { reconcile(Arc::new(event), ctx).await.map(|_| ()) }
    })
    .await;

    // The operator's caches: the Events (the controller's reflector store,
    // here `events`, still alive). Owned Deployments are watched through
    // kube's `metadata_watcher` as triggers only, so no child is cached.
    let rss_after = rss_bytes();
    let held = events.len();

    println!(
        "urr-operator reconcile benchmark: {EVENTS} Events, {CONCURRENCY} in flight, 2 worker threads"
    );
    println!(
        "mock: reconcile (12 applies + status + event)   {:>8.0} reconciles/s   p50 {:>6.2} ms   p99 {:>6.2} ms   (target >= 200/s)",
        reconcile.per_second,
        reconcile.p50.as_secs_f64() * 1e3,
        reconcile.p99.as_secs_f64() * 1e3
    );
    println!(
        "mock: baseline: 13 bare applies per Event       {:>8.0} per s          p50 {:>6.2} ms   p99 {:>6.2} ms",
        baseline.per_second,
        baseline.p50.as_secs_f64() * 1e3,
        baseline.p99.as_secs_f64() * 1e3
    );
    println!(
        "mock: resident memory: {:.1} MB at start, {:.1} MB after {EVENTS} reconciles holding {held} Events   (target < 50 MB)",
        rss_start as f64 / 1e6,
        rss_after as f64 / 1e6,
    );
    reconcile.warn_errors("mock reconcile");
    MockFigures {
        reconcile,
        baseline,
        rss_start,
        rss_after,
    }
}

/// CPU seconds (user + system) a process has used, from /proc; `None` when unreadable.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // /proc counts in USER_HZ, 100 on every Linux ABI.
    Some(ticks as f64 / 100.0)
}

/// The processes whose CPU time is reported beside each real-server pass:
/// this bench, and the stack's control plane when `URR_STACK_DIR` names it.
fn watched_processes() -> Vec<(&'static str, String)> {
    let mut out = vec![("bench", std::process::id().to_string())];
    if let Ok(dir) = std::env::var("URR_STACK_DIR") {
        for name in ["apiserver", "etcd", "controller-manager"] {
            if let Ok(pid) = std::fs::read_to_string(format!("{dir}/{name}.pid")) {
                out.push((name, pid.trim().to_owned()));
            }
        }
    }
    out
}

/// CPU seconds each watched process spent while `work` ran, beside its wall time.
async fn with_cpu<T>(work: impl Future<Output = T>) -> (T, String) {
    let processes = watched_processes();
    let before: Vec<Option<f64>> = processes.iter().map(|(_, pid)| cpu_seconds(pid)).collect();
    let started = Instant::now();
    let value = work.await;
    let wall = started.elapsed().as_secs_f64();
    let used: Vec<String> = processes
        .iter()
        .zip(before)
        .filter_map(|((name, pid), before)| {
            Some(format!("{name} {:.1}", cpu_seconds(pid)? - before?))
        })
        .collect();
    (
        value,
        format!("{wall:.1} s wall; CPU s: {}", used.join(", ")),
    )
}

/// What may have written an object: its resourceVersion moves with any
/// write, its `urr-operator` managedFields entries only with the operator's
/// (the controller-manager's status writes to Deployments move only the
/// resourceVersion and its own entries). Entries are kept as hashes, so
/// 13,000 of them do not weigh on the memory figure.
#[derive(Debug, Clone, PartialEq)]
struct Version {
    resource_version: Option<String>,
    operator_fields: u64,
    /// Hash of each other manager's entries, by "manager subresource".
    others: BTreeMap<String, u64>,
}

fn hash_of(value: &impl serde::Serialize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(value)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// Every object of kind `K` in `namespace`, 100 a page (as a reflector
/// lists), so no whole list is ever held at once.
async fn each_of<K>(client: &Client, namespace: &str, mut each: impl FnMut(K))
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut params = ListParams::default().limit(100);
    loop {
        let page = api.list(&params).await.expect("listing");
        let next = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        page.items.into_iter().for_each(&mut each);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
}

async fn versions_of<K>(client: &Client, namespace: &str, out: &mut BTreeMap<String, Version>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    each_of::<K>(client, namespace, |item| {
        let (mine, others): (Vec<_>, Vec<_>) = item
            .managed_fields()
            .iter()
            .partition(|f| f.manager.as_deref() == Some(children::FIELD_MANAGER));
        out.insert(
            format!("{}/{}", K::kind(&()), item.name_any()),
            Version {
                resource_version: item.resource_version(),
                operator_fields: hash_of(&mine),
                others: others
                    .iter()
                    .map(|f| {
                        (
                            format!(
                                "{} {}",
                                f.manager.clone().unwrap_or_default(),
                                f.subresource.clone().unwrap_or_default()
                            ),
                            hash_of(f),
                        )
                    })
                    .collect(),
            },
        );
    })
    .await;
}

/// The Events and their children (the bench's baseline ConfigMaps excepted).
async fn versions(client: &Client, namespace: &str) -> BTreeMap<String, Version> {
    let mut out = BTreeMap::new();
    versions_of::<Event>(client, namespace, &mut out).await;
    versions_of::<ConfigMap>(client, namespace, &mut out).await;
    versions_of::<Deployment>(client, namespace, &mut out).await;
    versions_of::<Service>(client, namespace, &mut out).await;
    versions_of::<PodDisruptionBudget>(client, namespace, &mut out).await;
    out.retain(|key, _| {
        !key.starts_with("ConfigMap/baseline-") && key != "ConfigMap/kube-root-ca.crt"
    });
    out
}

/// What the quiet pass changed, by kind of writer.
fn quiet_report(before: &BTreeMap<String, Version>, after: &BTreeMap<String, Version>) -> String {
    let mut by_operator: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_others: BTreeMap<String, usize> = BTreeMap::new();
    let mut unchanged = 0;
    for (key, now) in after {
        let kind = key.split('/').next().unwrap_or_default();
        match before.get(key) {
            Some(then) if then == now => unchanged += 1,
            Some(then) if then.operator_fields == now.operator_fields => {
                let writers: Vec<&str> = now
                    .others
                    .iter()
                    .filter(|(k, v)| then.others.get(*k) != Some(v))
                    .map(|(k, _)| k.as_str())
                    .collect();
                *by_others
                    .entry(format!("{kind} by {}", writers.join("+")))
                    .or_default() += 1;
            }
            _ => *by_operator.entry(kind).or_default() += 1,
        }
    }
    let written: usize = by_operator.values().sum();
    format!(
        "{written} objects written by urr-operator {by_operator:?}; {} changed by other writers {by_others:?}; {unchanged} unchanged",
        by_others.values().sum::<usize>()
    )
}

/// Deletes the bench's namespace when dropped armed, i.e. after a panic
/// (without waiting: the namespace controller removes the ~13,000 objects on
/// its own).
struct NamespaceGuard {
    name: String,
    armed: bool,
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let name = &self.name;
        let deleted = std::process::Command::new("kubectl")
            .args(["delete", "namespace", name, "--wait=false"])
            .stdout(std::process::Stdio::null())
            .status();
        if !deleted.is_ok_and(|s| s.success()) {
            eprintln!(
                "!! could not delete namespace {name}: run `kubectl delete namespace {name} --wait=false`"
            );
        }
    }
}

struct RealFigures {
    server: String,
    namespace: String,
    create: Pass,
    first: Pass,
    quiet: Pass,
    baseline_writes: Pass,
    baseline_noops: Pass,
    rss_start: u64,
    rss_before: u64,
    rss_after: u64,
    /// A stored Event as JSON, and its managedFields alone.
    event_bytes: (usize, usize),
    cpu: Vec<(&'static str, String)>,
    quiet_written: String,
}

/// Says loudly that half of the benchmark did not run, on both streams (so
/// neither `cargo bench`'s output nor a log of stderr hides it).
fn loud(lines: &[&str]) {
    let bar = "!".repeat(78);
    let text: String = lines.iter().map(|line| format!("!! {line}\n")).collect();
    println!("\n{bar}\n{text}{bar}\n");
    eprintln!("\n{bar}\n{text}{bar}\n");
}

/// Set: the Events the bench holds lose their managedFields on arrival, as
/// a reflector's `modify` could strip them, to show what they cost in memory.
const STRIP_KNOB: &str = "URR_BENCH_STRIP_MANAGED_FIELDS";

fn strip_managed_fields() -> bool {
    std::env::var_os(STRIP_KNOB).is_some_and(|v| !v.is_empty() && v != "0")
}

/// An Event as the controller's cache would hold it.
fn held(mut event: Event) -> Event {
    if strip_managed_fields() {
        event.metadata.managed_fields = None;
    }
    event
}

/// The real-server half: the same reconcile through a `kube::Client` of the
/// admin KUBECONFIG, against the API server it names.
async fn real_half() -> RealFigures {
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
    let rss_start = rss_bytes();

    let namespace = format!("urr-bench-reconcile-{:08x}", rand::random::<u32>());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.clone()),
                    labels: Some(BTreeMap::from([(
                        "urr.dev/bench".to_owned(),
                        "reconcile".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .expect("creating the bench namespace");
    let mut guard = NamespaceGuard {
        name: namespace.clone(),
        armed: true,
    };
    // No ReplicaSets here: otherwise the controller-manager would start
    // 6,000 pods (3 Deployments of 2 per Event) on the stack's 3 kwok nodes
    // (330 pod slots, shared with whoever else uses the stack) and keep the
    // scheduler busy for minutes. The Deployments themselves are written as
    // in a cluster; their status just never counts ready pods.
    Api::<ResourceQuota>::namespaced(client.clone(), &namespace)
        .create(
            &PostParams::default(),
            &ResourceQuota {
                metadata: ObjectMeta {
                    name: Some("no-replicasets".into()),
                    ..ObjectMeta::default()
                },
                spec: Some(ResourceQuotaSpec {
                    hard: Some(BTreeMap::from([(
                        "count/replicasets.apps".to_owned(),
                        Quantity("0".into()),
                    )])),
                    ..ResourceQuotaSpec::default()
                }),
                ..ResourceQuota::default()
            },
        )
        .await
        .expect("creating the ResourceQuota");

    // Ten days ahead: far before any pre-warm (the example's longest lead is
    // 30 min), so the phase stays Scheduled and nothing scales by load.
    let open = Timestamp::now() + SignedDuration::from_hours(240);
    let mut template = example_event();
    template.spec.sales_open_at = Time(open);
    template.spec.sales_close_at = Time(open + SignedDuration::from_hours(7 * 24));
    let events_api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let mut template_named = template.clone();
    template_named.metadata.name = Some("baseline".into());
    template_named.metadata.namespace = Some(namespace.clone());
    // Only for the owner reference `build` writes, which the baseline drops.
    template_named.metadata.uid = Some("00000000-0000-4000-8000-000000000000".into());

    let ctx = context(client.clone(), Arc::new(SystemClock));
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let mut baseline_object = children::build(
        &template_named,
        ServiceKind::Queue,
        2,
        &Defaults::default(),
        None,
    )
    .expect("build")
    .config_map;
    // Kept out of the garbage collector's and the quiet check's sight.
    baseline_object.metadata.owner_references = None;
    baseline_object.metadata.labels = Some(BTreeMap::from([(
        "urr.dev/bench".to_owned(),
        "baseline".to_owned(),
    )]));
    let baseline_for = |i: usize| {
        let mut object = baseline_object.clone();
        object.metadata.name = Some(format!("baseline-{i:04}"));
        object
    };
    let set_n = |object: &mut ConfigMap, j: usize| {
        object
            .data
            .get_or_insert_with(BTreeMap::new)
            .insert("bench-n".into(), j.to_string());
    };
    let mut cpu = Vec::new();

    // Baseline as writes, while the server has nothing else to do: per Event
    // one ConfigMap created, then changed 12 times.
    let (baseline_writes, used) = with_cpu(timed(0..EVENTS, |i| {
        applies(configmaps.clone(), baseline_for(i), set_n)
    }))
    .await;
    cpu.push(("baseline, 13 writing applies per Event", used));

    let created = timed(0..EVENTS, |i| {
        let mut event = template.clone();
        event.metadata.name = Some(format!("event-{i:04}"));
        let api = events_api.clone();
        async move { api.create(&PostParams::default(), &event).await.map(|_| ()) }
    })
    .await;
    if created.errors > 0 {
        panic!("creating the Events: {:?}", created.first_error);
    }

    // The Events as a controller's first list gets them; the creates'
    // answers are dropped, as a controller never sees them.
    let mut listed = Vec::with_capacity(EVENTS);
    each_of::<Event>(&client, &namespace, |event| listed.push(held(event))).await;
    let rss_before = rss_bytes();
    let (first, used) = with_cpu(timed(listed, |event| {
        let ctx = ctx.clone();
        async move { reconcile(Arc::new(event), ctx).await.map(|_| ()) }
    }))
    .await;
    cpu.push(("first reconcile", used));

    // What the controller's cache holds after the watch delivered the
    // first pass's writes: each Event with the status it wrote.
    let mut stored = Vec::with_capacity(EVENTS);
    let mut event_bytes = (0, 0);
    each_of::<Event>(&client, &namespace, |event: Event| {
        if stored.is_empty() {
            event_bytes = (
                serde_json::to_vec(&event).map_or(0, |v| v.len()),
                serde_json::to_vec(&event.metadata.managed_fields).map_or(0, |v| v.len()),
            );
        }
        stored.push(held(event));
    })
    .await;

    // Baseline as no-ops: the same ConfigMaps applied unchanged 13 times.
    let (baseline_noops, used) = with_cpu(timed(0..EVENTS, |i| {
        applies(configmaps.clone(), baseline_for(i), |object, _| {
            set_n(object, APPLIES_PER_EVENT - 1)
        })
    }))
    .await;
    cpu.push(("baseline, 13 no-op applies per Event", used));

    let before = versions(&client, &namespace).await;
    let (quiet, used) = with_cpu(timed(stored.iter().cloned(), |event| {
        let ctx = ctx.clone();
        async move { reconcile(Arc::new(event), ctx).await.map(|_| ()) }
    }))
    .await;
    cpu.push(("quiet reconcile", used));
    // With the 1,000 stored Events still held, as the controller's cache would.
    let rss_after = rss_bytes();
    drop(stored);
    let after = versions(&client, &namespace).await;
    let quiet_written = quiet_report(&before, &after);

    // Not waited for: the namespace controller deletes the children.
    match namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
    {
        Ok(_) => guard.armed = false,
        Err(error) => eprintln!("deleting namespace {namespace}: {error}; retrying with kubectl"),
    }

    RealFigures {
        server: format!("kube-apiserver {}", version.git_version),
        namespace,
        create: created,
        first,
        quiet,
        baseline_writes,
        baseline_noops,
        rss_start,
        rss_before,
        rss_after,
        event_bytes,
        cpu,
        quiet_written,
    }
}

fn print_table(mock: &MockFigures, real: &RealFigures) {
    println!();
    println!(
        "real API server: {} + etcd on loopback, namespace {} (deleted, not waited for)",
        real.server, real.namespace
    );
    println!(
        "NOTE: the API server, etcd and the controller-manager run on this machine and share its 2 cores with the bench:"
    );
    println!(
        "      the real-server figures are the whole round trip, server work included, not the operator's cost alone."
    );
    let mb = |bytes: u64| format!("{:.1} MB", bytes as f64 / 1e6);
    let rows = [
        (
            "reconcile, first (12 applies + status + Event)",
            mock.reconcile.cell(),
            real.first.cell(),
        ),
        (
            "reconcile, quiet second pass (12 no-op applies)",
            "—".to_owned(),
            real.quiet.cell(),
        ),
        (
            "baseline: 13 bare applies per Event (real: each a write)",
            mock.baseline.cell(),
            real.baseline_writes.cell(),
        ),
        (
            "baseline: 13 bare applies per Event, no-ops",
            "—".to_owned(),
            real.baseline_noops.cell(),
        ),
        (
            "resident memory after, holding 1,000 Events",
            format!("{} ({} at start)", mb(mock.rss_after), mb(mock.rss_start)),
            format!(
                "{} ({} at the half's start, {} holding the listed Events before the first reconcile)",
                mb(real.rss_after),
                mb(real.rss_start),
                mb(real.rss_before)
            ),
        ),
    ];
    println!();
    println!("| measurement | mock API server | real API server |\n|---|---|---|");
    for (what, mock, real) in rows {
        println!("| {what} | {mock} | {real} |");
    }
    println!();
    println!(
        "creating the 1,000 Events (not part of any figure above): {}",
        real.create.cell()
    );
    for (what, used) in &real.cpu {
        println!("{what}: {used}");
    }
    println!("quiet pass wrote: {}", real.quiet_written);
    println!(
        "a stored Event is {:.1} KB as JSON, {:.1} KB of it managedFields; the Events held here {} ({STRIP_KNOB}={})",
        real.event_bytes.0 as f64 / 1e3,
        real.event_bytes.1 as f64 / 1e3,
        if strip_managed_fields() {
            "have them cleared"
        } else {
            "keep them, as the operator's cache does"
        },
        std::env::var(STRIP_KNOB).unwrap_or_default()
    );
    for (pass, what) in [
        (&real.first, "real first reconcile"),
        (&real.quiet, "real quiet reconcile"),
        (&real.baseline_writes, "real writing baseline"),
        (&real.baseline_noops, "real no-op baseline"),
    ] {
        pass.warn_errors(what);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mock = mock_half().await;
    if std::env::var_os("KUBECONFIG").is_none() {
        loud(&[
            "THE REAL-API-SERVER HALF OF THIS BENCHMARK DID NOT RUN: KUBECONFIG is not set.",
            "Only the mock-server figures above were measured. To run both:",
            "  eval \"$(scripts/stack env)\"; cargo bench -p urr-operator --bench reconcile",
        ]);
        return;
    }
    let real = real_half().await;
    print_table(&mock, &real);
}
