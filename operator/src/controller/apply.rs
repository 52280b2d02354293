//! Step 4, **apply**: the desired children by server-side apply under one
//! field manager, forced, so hand edits to fields the operator owns are
//! repaired and other managers' fields are left alone (a no-op apply writes
//! nothing on the server). What the Deployments report back is the
//! replicas' half of the status.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use urr_crds::event::{ServiceReplicas, ServicesStatus};

use super::Error;
use super::desired::Desired;
use crate::children::{FIELD_MANAGER, ServiceKind};

/// The parameters of every apply the operator makes.
pub(super) fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Applies every service's children, one service after the other, and
/// reads back how many of each service's pods are ready.
pub(super) async fn children(
    client: &Client,
    namespace: &str,
    desired: &[Desired],
) -> Result<ServicesStatus, Error> {
    let mut services = ServicesStatus::default();
    for one in desired {
        let built = &one.children;
        apply::<ConfigMap>(client, namespace, &built.config_map).await?;
        let deployment = apply::<Deployment>(client, namespace, &built.deployment).await?;
        apply::<Service>(client, namespace, &built.service).await?;
        apply::<PodDisruptionBudget>(client, namespace, &built.pod_disruption_budget).await?;
        let ready = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let replicas = ServiceReplicas {
            desired: one.replicas,
            ready,
        };
        match one.service {
            ServiceKind::Queue => services.queue = replicas,
            ServiceKind::Ticket => services.ticket = replicas,
            ServiceKind::Payment => services.payment = replicas,
        }
    }
    Ok(services)
}

async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
        .map_err(|source| Error::Apply {
            kind: K::kind(&()).into_owned(),
            name,
            source,
        })
}
