//! The RBAC rules in `operator/rbac/operator-rbac.yaml` against what the
//! controller actually does: nothing missing, nothing extra, no wildcards.

use std::collections::BTreeSet;

use serde::Deserialize;

#[derive(Deserialize)]
struct Role {
    kind: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

/// (kind of role, API group, resource, verb) the operator uses, and where.
const USED: &[(&str, &str, &str, &str)] = &[
    // controller::run watches Events and owned Deployments; waiting_room
    // reads a room's Event by name.
    ("ClusterRole", "urr.dev", "events", "get"),
    ("ClusterRole", "urr.dev", "events", "list"),
    ("ClusterRole", "urr.dev", "events", "watch"),
    // waiting_room::run watches WaitingRooms; finalizer() patches them.
    ("ClusterRole", "urr.dev", "waitingrooms", "list"),
    ("ClusterRole", "urr.dev", "waitingrooms", "watch"),
    ("ClusterRole", "urr.dev", "waitingrooms", "patch"),
    ("ClusterRole", "urr.dev", "waitingrooms/status", "patch"),
    // RoomContext::secret reads the Redis URL and the signing key.
    ("ClusterRole", "", "secrets", "get"),
    ("ClusterRole", "urr.dev", "events/status", "patch"),
    ("ClusterRole", "urr.dev", "events/finalizers", "update"),
    ("ClusterRole", "apps", "deployments", "list"),
    ("ClusterRole", "apps", "deployments", "watch"),
    ("ClusterRole", "apps", "deployments", "create"),
    ("ClusterRole", "apps", "deployments", "patch"),
    // waiting_room::run watches ConfigMaps' metadata; page_step reads one.
    ("ClusterRole", "", "configmaps", "get"),
    ("ClusterRole", "", "configmaps", "list"),
    ("ClusterRole", "", "configmaps", "watch"),
    ("ClusterRole", "", "configmaps", "create"),
    ("ClusterRole", "", "configmaps", "patch"),
    ("ClusterRole", "", "services", "create"),
    ("ClusterRole", "", "services", "patch"),
    ("ClusterRole", "policy", "poddisruptionbudgets", "create"),
    ("ClusterRole", "policy", "poddisruptionbudgets", "patch"),
    ("ClusterRole", "events.k8s.io", "events", "create"),
    ("ClusterRole", "events.k8s.io", "events", "patch"),
    // lease::Elector: get_opt, create, replace.
    ("Role", "coordination.k8s.io", "leases", "get"),
    ("Role", "coordination.k8s.io", "leases", "create"),
    ("Role", "coordination.k8s.io", "leases", "update"),
];

#[test]
fn rbac_grants_exactly_what_the_operator_uses() {
    let text = include_str!("../rbac/operator-rbac.yaml");
    let mut granted = BTreeSet::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let role: Role = serde::Deserialize::deserialize(document).expect("a Role or ClusterRole");
        for rule in role.rules {
            for group in &rule.api_groups {
                for resource in &rule.resources {
                    for verb in &rule.verbs {
                        assert!(
                            ![group, resource, verb].iter().any(|s| s.contains('*')),
                            "no wildcards"
                        );
                        granted.insert((
                            role.kind.clone(),
                            group.clone(),
                            resource.clone(),
                            verb.clone(),
                        ));
                    }
                }
            }
        }
    }
    let used: BTreeSet<(String, String, String, String)> = USED
        .iter()
        .map(|(k, g, r, v)| {
            (
                (*k).to_owned(),
                (*g).to_owned(),
                (*r).to_owned(),
                (*v).to_owned(),
            )
        })
        .collect();
    let missing: Vec<_> = used.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&used).collect();
    assert!(missing.is_empty(), "missing permissions: {missing:?}");
    assert!(
        extra.is_empty(),
        "permissions granted but not used: {extra:?}"
    );
}
