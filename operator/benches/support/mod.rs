//! What the benches share against the real API server.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

/// Applies the repository's CRDs (as `kubectl apply --server-side
/// --field-manager urr-crds` would) and waits until they are Established, so
/// the bench measures what the repository generates.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in ["events.urr.dev.yaml", "waitingrooms.urr.dev.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crds/generated")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("a generated CRD");
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("a CRD");
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply("urr-crds").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("applying a CRD");
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .expect("CRD Established within 30 s")
            .expect("watching a CRD");
    }
}
