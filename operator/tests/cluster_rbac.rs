//! The chart's RBAC against what the operator really asks a real API server
//! for. The stack's kube-apiserver writes an audit log of every request a
//! service account makes (`URR_KUBE_AUDIT_LOG`, metadata only); the operator
//! runs with the chart's ServiceAccount token through a whole Event and
//! WaitingRoom lifecycle, and then:
//!
//! * nothing it asked for was refused (a verb missing from the chart is a
//!   403 in the log, and this test names it);
//! * every rule the chart grants was used (a grant wider than the calls made
//!   fails, with the exceptions below, each with its reason).
//!
//! operator/tests/rbac.rs keeps the same rules against a list of calls read
//! from the code; this one takes the list from the API server.

// Shared with cluster.rs; not every helper is used here.
#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::Value;
use urr_crds::{Event, WaitingRoom};

use support::{
    Operator, Release, TestNamespace, admin, at, create_secrets, ensure_store, eventually, example,
    install_crds, random_db, redis_url, stack_env, suffix,
};

/// (API group, resource[/subresource], verb).
type Permission = (String, String, String);

/// Granted, but never a request of their own, so never in the audit log.
const NOT_A_REQUEST: &[(&str, &str, &str, &str)] = &[
    (
        "urr.dev",
        "events/finalizers",
        "update",
        "checked by the OwnerReferencesPermissionEnforcement admission plugin when a child \
         with blockOwnerDeletion is applied (the stack enables it): the children being \
         created at all proves the grant",
    ),
    (
        "apps",
        "deployments",
        "create",
        "a server-side apply of a missing object is a patch the API server also authorizes \
         as create: the children being created proves it",
    ),
    ("", "configmaps", "create", "as for deployments"),
    ("", "services", "create", "as for deployments"),
    (
        "policy",
        "poddisruptionbudgets",
        "create",
        "as for deployments",
    ),
];
/// Granted for a path this lifecycle does not take, each said why.
const NOT_EXERCISED: &[(&str, &str, &str, &str)] = &[(
    "events.k8s.io",
    "events",
    "patch",
    "a Kubernetes Event that repeats (same reason and action) is a patch of its series; \
     each of this lifecycle's events happens once",
)];

fn permissions_of_rules(rules: &Value) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().into_iter().flatten() {
        let strings = |field: &str| -> Vec<String> {
            rule[field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                for verb in strings("verbs") {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn kubectl_json(args: &[&str]) -> Value {
    let output = std::process::Command::new("kubectl")
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e}"));
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("kubectl's JSON")
}

/// What the requests of `group` (the service accounts of one namespace) asked
/// for, and which of them were refused (403), from the audit log.
fn audited(log: &str, group: &str) -> (BTreeMap<Permission, u32>, Vec<String>) {
    let mut used = BTreeMap::new();
    let mut refused = Vec::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let in_group = entry["user"]["groups"]
            .as_array()
            .is_some_and(|groups| groups.iter().any(|g| g == group));
        if !in_group || entry["stage"] != "ResponseComplete" {
            continue;
        }
        let object = &entry["objectRef"];
        let Some(resource) = object["resource"].as_str() else {
            continue; // a non-resource URL (/version, /api): not RBAC rules of the chart
        };
        let resource = match object["subresource"].as_str() {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        };
        let permission = (
            object["apiGroup"].as_str().unwrap_or_default().to_owned(),
            resource,
            entry["verb"].as_str().unwrap_or_default().to_owned(),
        );
        if entry["responseStatus"]["code"] == 403 {
            refused.push(format!(
                "{permission:?} {}",
                entry["requestURI"].as_str().unwrap_or_default()
            ));
        }
        *used.entry(permission).or_insert(0) += 1;
    }
    (used, refused)
}

#[tokio::test]
async fn the_chart_grants_exactly_what_the_operator_asks_the_api_server_for() {
    let audit_log = stack_env("URR_KUBE_AUDIT_LOG");
    let client = admin().await;
    install_crds(&client).await;
    let store = format!("urr-edge-rbac-{}", suffix());
    ensure_store(&store).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-rbac").await;
    let redis = redis_url(random_db());
    create_secrets(&client, &ns.name, &redis).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    // The whole lifecycle: an Event opening soon (children, pre-warm,
    // status, phase events), its room (finalizer, Secrets, edge), a spec
    // change, then both deleted (the room's finalizer released).
    let name = format!("rbac-{}", suffix());
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let rooms: Api<WaitingRoom> = Api::namespaced(client.clone(), &ns.name);
    let mut event: Event = serde_yaml::from_str(&example("event.yaml")).expect("example Event");
    event.metadata.name = Some(name.clone());
    let open = Timestamp::now().as_second() + 600;
    event.spec.sales_open_at = at(open);
    event.spec.sales_close_at = at(open + 3600);
    events
        .create(&PostParams::default(), &event)
        .await
        .expect("creating the Event");
    let mut room: WaitingRoom =
        serde_yaml::from_str(&example("waitingroom.yaml")).expect("example WaitingRoom");
    room.metadata.name = Some(name.clone());
    room.spec.event_ref.name = name.clone();
    room.spec.paths.protected = vec![format!("/events/{name}")];
    if let Some(edge) = room.spec.edge.as_mut() {
        edge.key_value_store_name = Some(store.clone());
        edge.signing_key_id = format!("kid-{name}");
    }
    // A branded page, so the operator reads its ConfigMap (`get`).
    let mut page: k8s_openapi::api::core::v1::ConfigMap =
        serde_yaml::from_str(&example("waiting-page/configmap.yaml")).expect("example ConfigMap");
    page.metadata.namespace = None;
    page.metadata.name = Some(format!("{name}-page"));
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &page)
        .await
        .expect("creating the page ConfigMap");
    room.spec.page =
        serde_json::from_value(serde_json::json!({"templateConfigMap": format!("{name}-page")}))
            .expect("spec.page");
    rooms
        .create(&PostParams::default(), &room)
        .await
        .expect("creating the WaitingRoom");
    eventually("the room Ready", Duration::from_secs(60), || async {
        let room = rooms.get(&name).await.map_err(|e| e.to_string())?;
        let ready = room.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            Ok(())
        } else {
            Err(format!("{:?}", room.status))
        }
    })
    .await;
    let children = ListParams::default().labels(&format!("urr.dev/event={name}"));
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &ns.name);
    eventually("three Deployments", Duration::from_secs(60), || async {
        let count = deployments
            .list(&children)
            .await
            .map_err(|e| e.to_string())?
            .items
            .len();
        if count == 3 {
            Ok(())
        } else {
            Err(format!("{count} Deployments"))
        }
    })
    .await;
    // At least one Lease renewal (every 5 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    rooms
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the room");
    eventually("the room gone", Duration::from_secs(60), || async {
        match rooms.get_opt(&name).await {
            Ok(None) => Ok(()),
            Ok(Some(room)) => Err(format!("still there: {:?}", room.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    events
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the Event");
    tokio::time::sleep(Duration::from_secs(2)).await;
    operator.assert_running();
    operator.kill();

    // What the chart grants this release's ServiceAccount.
    let cluster_role = kubectl_json(&["get", "clusterrole", &release.fullname]);
    let leader_role = kubectl_json(&[
        "-n",
        &release.namespace,
        "get",
        "role",
        &format!("{}-leader-election", release.fullname),
    ]);
    let granted: BTreeSet<Permission> = permissions_of_rules(&cluster_role["rules"])
        .into_iter()
        .chain(permissions_of_rules(&leader_role["rules"]))
        .collect();
    assert!(!granted.is_empty(), "the chart granted nothing?");

    let log = std::fs::read_to_string(&audit_log)
        .unwrap_or_else(|e| panic!("reading the audit log {audit_log}: {e}"));
    let (used, refused) = audited(
        &log,
        &format!("system:serviceaccounts:{}", release.namespace),
    );
    assert!(
        !used.is_empty(),
        "no request of the operator in {audit_log}: is the API server's audit log on?"
    );
    assert!(
        refused.is_empty(),
        "the API server refused the operator (a permission missing from the chart):\n{}\n{}",
        refused.join("\n"),
        operator.log()
    );
    let excused = |p: &Permission| {
        NOT_A_REQUEST
            .iter()
            .chain(NOT_EXERCISED)
            .any(|(g, r, v, _)| p.0 == *g && p.1 == *r && p.2 == *v)
    };
    let unused: Vec<&Permission> = granted
        .iter()
        .filter(|p| !used.contains_key(*p) && !excused(p))
        .collect();
    assert!(
        unused.is_empty(),
        "the chart grants more than the operator used (drop them from operator/rbac/operator-rbac.yaml, or say here why a path needs them): {unused:?}\nused: {used:?}"
    );
    // Everything used is granted (else it would have been refused above),
    // and the excused grants are still grants (a stale excuse fails).
    for (group, resource, verb, why) in NOT_A_REQUEST.iter().chain(NOT_EXERCISED) {
        let permission = (
            (*group).to_owned(),
            (*resource).to_owned(),
            (*verb).to_owned(),
        );
        assert!(
            granted.contains(&permission),
            "{permission:?} is excused ({why}) but no longer granted: drop the excuse"
        );
    }
    eprintln!(
        "RBAC: {} permissions granted, {} used ({} requests), none refused",
        granted.len(),
        used.len(),
        used.values().sum::<u32>()
    );
}
