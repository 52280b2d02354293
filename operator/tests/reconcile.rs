//! Reconcile scenarios against a mock API server (tower-test, as in kube-rs's
//! controller-rs): every request the reconciler makes is asserted, in order,
//! and any request beyond the expected ones fails the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};
use urr_crds::{Event, EventPhase};
use urr_operator::children::Defaults;
use urr_operator::controller::{Context, FixedClock, reconcile};
use urr_operator::metrics::OperatorMetrics;
use urr_operator::scaling::Load;
use urr_operator::stats::{FixedStats, Observed};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn example_event() -> Event {
    let mut event: Event =
        serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example");
    event.metadata.namespace = Some("urr-demo".to_owned());
    event.metadata.uid = Some("3f0e2d1c-0000-4000-8000-000000000001".to_owned());
    event.metadata.generation = Some(1);
    event
}

fn at_open(event: &Event, offset: i64) -> Timestamp {
    event.spec.sales_open_at.0 + SignedDuration::from_secs(offset)
}

fn context(client: Client, now: Timestamp, observed: Observed) -> Arc<Context> {
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
        Arc::new(FixedStats(observed)),
        Arc::new(FixedClock(Mutex::new(now))),
        Arc::new(OperatorMetrics::new()),
    ))
}

/// One request the reconciler must make next.
#[derive(Debug, Clone)]
enum Expect {
    /// Server-side apply of a child: `PATCH <path>` with our field manager, forced.
    Apply(String),
    /// Server-side apply of the Event's status.
    Status,
    /// A Kubernetes Event about the Event, with this reason.
    Publish(&'static str),
}

fn child_paths(event: &str) -> Vec<Expect> {
    let mut paths = Vec::new();
    for service in ["queue", "ticket", "payment"] {
        let name = format!("{event}-{service}");
        paths.push(Expect::Apply(format!(
            "/api/v1/namespaces/urr-demo/configmaps/{name}"
        )));
        paths.push(Expect::Apply(format!(
            "/apis/apps/v1/namespaces/urr-demo/deployments/{name}"
        )));
        paths.push(Expect::Apply(format!(
            "/api/v1/namespaces/urr-demo/services/{name}"
        )));
        paths.push(Expect::Apply(format!(
            "/apis/policy/v1/namespaces/urr-demo/poddisruptionbudgets/{name}"
        )));
    }
    paths
}

/// What the mock server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Applied bodies by path.
    applied: Vec<(String, Value)>,
    status: Option<Value>,
    published: Vec<Value>,
}

/// Answers the expected requests in order; Deployments come back with
/// `ready_replicas` ready pods. Then asserts that nothing else is asked.
async fn serve(mut handle: Handle, expected: Vec<Expect>, ready_replicas: i64) -> Seen {
    let mut seen = Seen::default();
    for expect in expected {
        let (request, respond) =
            tokio::time::timeout(Duration::from_secs(5), handle.next_request())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {expect:?}"))
                .unwrap_or_else(|| panic!("the client went away before {expect:?}"));
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        let method = request.method().clone();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match &expect {
            Expect::Apply(expected_path) => {
                assert_eq!(
                    (&method, path.as_str()),
                    (&Method::PATCH, expected_path.as_str())
                );
                assert!(
                    query.contains("fieldManager=urr-operator") && query.contains("force=true"),
                    "{query}"
                );
                seen.applied.push((path.clone(), body.clone()));
                if path.contains("/deployments/") {
                    body["status"] =
                        json!({"readyReplicas": ready_replicas, "replicas": ready_replicas});
                }
            }
            Expect::Status => {
                assert_eq!(
                    (&method, path.as_str()),
                    (
                        &Method::PATCH,
                        "/apis/urr.dev/v1alpha1/namespaces/urr-demo/events/aurora-seoul-2026/status"
                    )
                );
                assert!(query.contains("fieldManager=urr-operator"), "{query}");
                seen.status = Some(body["status"].clone());
                let mut event = serde_json::to_value(example_event()).expect("json");
                event["status"] = body["status"].clone();
                body = event;
            }
            Expect::Publish(reason) => {
                assert_eq!(
                    (&method, path.as_str()),
                    (
                        &Method::POST,
                        "/apis/events.k8s.io/v1/namespaces/urr-demo/events"
                    )
                );
                assert_eq!(body["reason"], *reason, "{body}");
                seen.published.push(body.clone());
            }
        }
        respond.send_response(
            Response::builder()
                .status(200)
                .body(Body::from(serde_json::to_vec(&body).expect("json")))
                .expect("response"),
        );
    }
    if let Ok(Some((request, _))) =
        tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await
    {
        panic!("unexpected request: {} {}", request.method(), request.uri());
    }
    seen
}

/// Runs one reconcile of `event` at `now` against a fresh mock server that
/// expects exactly `expected`, Deployments reporting `ready` ready pods.
async fn reconcile_at(
    event: Event,
    now: Timestamp,
    observed: Observed,
    expected: Vec<Expect>,
    ready: i64,
) -> (Action, Seen) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "urr-demo"), now, observed);
    let server = tokio::spawn(serve(handle, expected, ready));
    let action = reconcile(Arc::new(event), ctx).await.expect("reconcile");
    (action, server.await.expect("server"))
}

/// Every child applied, the status written, and a phase-change event.
fn first_sight() -> Vec<Expect> {
    let mut expected = child_paths("aurora-seoul-2026");
    expected.extend([Expect::Status, Expect::Publish("PhaseChanged")]);
    expected
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

fn with_status(mut event: Event, status: &Value) -> Event {
    event.status = Some(serde_json::from_value(status.clone()).expect("status"));
    event
}

fn replicas_of(seen: &Seen, service: &str) -> i64 {
    seen.applied
        .iter()
        .find(|(path, _)| path.ends_with(&format!("deployments/aurora-seoul-2026-{service}")))
        .and_then(|(_, body)| body["spec"]["replicas"].as_i64())
        .expect("deployment applied")
}

#[tokio::test]
async fn first_reconcile_creates_children_status_and_an_event_then_a_second_changes_nothing() {
    let event = example_event();
    let now = at_open(&event, -3 * 3600);
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "urr-demo");
    let ctx = context(client, now, Observed::default());

    let mut expected = child_paths("aurora-seoul-2026");
    expected.push(Expect::Status);
    expected.push(Expect::Publish("PhaseChanged"));
    let server = tokio::spawn(serve(handle, expected, 2));
    let action = reconcile(Arc::new(event.clone()), ctx.clone())
        .await
        .expect("reconcile");
    let seen = server.await.expect("server");
    assert_eq!(seen.applied.len(), 12);
    assert_eq!(
        [
            replicas_of(&seen, "queue"),
            replicas_of(&seen, "ticket"),
            replicas_of(&seen, "payment")
        ],
        [2, 2, 2]
    );
    let status = seen.status.clone().expect("status written");
    assert_eq!(status["phase"], "Scheduled");
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        status["services"]["queue"],
        json!({"desired": 2, "ready": 2})
    );
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["observedGeneration"], 1);
    // The first pre-warm is 2.5 h away; a quiet event is looked at again after
    // an hour at most (a safety net for missed watches), never polled faster.
    assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
    assert!(
        seen.published[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains("Scheduled"))
    );

    // Second reconcile with the status now stored: the same applies (a no-op
    // on the server), no status write, no event.
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "urr-demo");
    let ctx = context(client, now, Observed::default());
    let server = tokio::spawn(serve(handle, child_paths("aurora-seoul-2026"), 2));
    reconcile(Arc::new(with_status(event, &status)), ctx)
        .await
        .expect("reconcile");
    let seen = server.await.expect("server");
    assert!(seen.status.is_none() && seen.published.is_empty());
}

#[tokio::test]
async fn crossing_the_prewarm_boundary_scales_up_and_announces_it() {
    let event = example_event();
    let before = at_open(&event, -1801);
    let (_, first) =
        reconcile_at(event.clone(), before, Observed::default(), first_sight(), 2).await;
    let status = first.status.clone().expect("status");
    assert_eq!(replicas_of(&first, "queue"), 2);

    // Exactly at salesOpenAt − 30 min: queue and ticket pre-warm, payment (15 min lead) not yet.
    let boundary = at_open(&event, -1800);
    let (action, seen) = reconcile_at(
        with_status(event, &status),
        boundary,
        Observed {
            load: Some(Load {
                queue_depth: 0,
                active_users: 0,
                arrivals_per_second: 0,
            }),
            seats: None,
            room: None,
        },
        first_sight(),
        2,
    )
    .await;
    assert_eq!(
        [
            replicas_of(&seen, "queue"),
            replicas_of(&seen, "ticket"),
            replicas_of(&seen, "payment")
        ],
        [20, 10, 2]
    );
    assert_eq!(seen.status.expect("status")["phase"], "Prewarming");
    assert!(
        seen.published[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains("Scheduled → Prewarming")),
        "{:?}",
        seen.published
    );
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(900)),
        "next: payment's pre-warm"
    );
}

#[tokio::test]
async fn on_sale_without_stats_keeps_the_scale_and_is_degraded() {
    let event = example_event();
    let (action, seen) = reconcile_at(
        event.clone(),
        at_open(&event, 60),
        Observed::default(),
        first_sight(),
        1,
    )
    .await;
    // No memory of a last scale in a fresh operator: the pre-warm count, never zero.
    assert_eq!(replicas_of(&seen, "queue"), 20);
    let status = seen.status.expect("status");
    assert_eq!(status["phase"], "OnSale");
    let degraded = condition(&status, "Degraded");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("StatsUnavailable"))
    );
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(15)),
        "the load is followed while on sale"
    );
}

#[tokio::test]
async fn a_drifted_deployment_is_applied_back_to_the_desired_replicas() {
    // Someone scaled the queue Deployment by hand; the watch on owned
    // Deployments triggers a reconcile, which applies the desired count again
    // (forced server-side apply takes the field back).
    let event = example_event();
    let (_, seen) = reconcile_at(
        event.clone(),
        at_open(&event, -7200),
        Observed::default(),
        first_sight(),
        99,
    )
    .await;
    assert_eq!(replicas_of(&seen, "queue"), 2);
}

#[tokio::test]
async fn an_invalid_spec_writes_no_children_and_is_not_retried() {
    let mut event = example_event();
    event.spec.services.ticket.replicas.min = 30; // above max 20
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(
        Client::new(service, "urr-demo"),
        at_open(&event, -7200),
        Observed::default(),
    );
    let server = tokio::spawn(serve(
        handle,
        vec![Expect::Status, Expect::Publish("InvalidSpec")],
        0,
    ));
    let action = reconcile(Arc::new(event.clone()), ctx)
        .await
        .expect("reconcile");
    let seen = server.await.expect("server");
    assert_eq!(action, Action::await_change());
    let status = seen.status.expect("status");
    let ready = condition(&status, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("InvalidSpec"))
    );
    assert!(ready["message"].as_str().is_some_and(|m| {
        m.contains("spec.services.ticket.replicas: replicas.min must not exceed replicas.max")
    }));

    // Reconciled again (a resync) with that status stored: not a single request.
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(
        Client::new(service, "urr-demo"),
        at_open(&event, -7100),
        Observed::default(),
    );
    let server = tokio::spawn(serve(handle, vec![], 0));
    reconcile(Arc::new(with_status(event, &status)), ctx)
        .await
        .expect("reconcile");
    server.await.expect("server");
}

#[tokio::test]
async fn a_deleted_event_is_left_to_garbage_collection() {
    let mut event = example_event();
    event.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(
        Client::new(service, "urr-demo"),
        at_open(&event, 0),
        Observed::default(),
    );
    let server = tokio::spawn(serve(handle, vec![], 0));
    assert_eq!(
        reconcile(Arc::new(event), ctx).await.expect("reconcile"),
        Action::await_change()
    );
    server.await.expect("server");
}

#[tokio::test]
async fn sold_out_scales_down_after_the_window_and_reports_seats() {
    let event = example_event();
    let seats = urr_crds::event::SeatCounts {
        total: 13_480,
        held: 0,
        sold: 13_480,
    };
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let observed = Observed {
        load: Some(Load {
            queue_depth: 0,
            active_users: 0,
            arrivals_per_second: 0,
        }),
        seats: Some(seats),
        room: None,
    };
    let ctx = context(
        Client::new(service, "urr-demo"),
        at_open(&event, 600),
        observed,
    );
    let mut expected = child_paths("aurora-seoul-2026");
    expected.extend([Expect::Status, Expect::Publish("PhaseChanged")]);
    let server = tokio::spawn(serve(handle, expected, 2));
    reconcile(Arc::new(event), ctx).await.expect("reconcile");
    let seen = server.await.expect("server");
    let status = seen.status.clone().expect("status");
    assert_eq!(
        status["phase"],
        serde_json::to_value(EventPhase::SoldOut).expect("json")
    );
    assert_eq!(status["seats"]["sold"], 13_480);
    assert_eq!(
        replicas_of(&seen, "queue"),
        2,
        "min once sold out (fresh operator: no window to honour)"
    );
}
