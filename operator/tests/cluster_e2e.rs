//! End to end against a real cluster. Not run here (no container engine on
//! these machines); run it wherever you have kind or k3d:
//!
//! ```sh
//! kind create cluster --name urr                      # or: k3d cluster create urr
//! kubectl apply --server-side -f crds/generated/
//! kubectl create namespace urr-e2e
//! cargo run -p urr-operator -- run --leader-election=false --log-format text &
//! cargo test -p urr-operator --test cluster_e2e -- --ignored --nocapture
//! ```
//!
//! It applies `examples/event.yaml` in `urr-e2e`, waits for the twelve
//! children and a status with a phase, then deletes the Event and waits for
//! garbage collection to remove the children.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use urr_crds::Event;

const NAMESPACE: &str = "urr-e2e";

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..120 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn an_event_gets_its_services_and_takes_them_away_when_deleted() {
    let client = Client::try_default()
        .await
        .expect("a kube config for the test cluster");
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client, NAMESPACE);
    let event: Event =
        serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example");
    events
        .patch(
            "aurora-seoul-2026",
            &PatchParams::apply("urr-e2e").force(),
            &Patch::Apply(&event),
        )
        .await
        .expect("apply the example Event");
    let selector = ListParams::default().labels("urr.dev/event=aurora-seoul-2026");
    eventually("three Deployments", || async {
        deployments
            .list(&selector)
            .await
            .map(|l| l.items.len() == 3)
            .unwrap_or(false)
    })
    .await;
    eventually("a phase in the status", || async {
        events
            .get_status("aurora-seoul-2026")
            .await
            .ok()
            .and_then(|e| e.status)
            .and_then(|s| s.phase)
            .is_some()
    })
    .await;
    events
        .delete("aurora-seoul-2026", &DeleteParams::foreground())
        .await
        .expect("delete");
    eventually("garbage collection of the children", || async {
        deployments
            .list(&selector)
            .await
            .map(|l| l.items.is_empty())
            .unwrap_or(false)
    })
    .await;
}
