//! The objects each runtime service of an Event needs: a ConfigMap with its
//! settings, a Deployment, a Service and a PodDisruptionBudget. All carry the
//! Event as controller owner (deleting the Event garbage-collects them) and
//! the same labels, so `kubectl get all -l urr.dev/event=<name>` finds them.
//!
//! Pods run as non-root with a read-only root filesystem, no privilege
//! escalation, no capabilities and no service-account token: the runtime
//! services never talk to the Kubernetes API.
//!
//! One builder per resource, all pure (no client): [`config_map`] (the
//! settings and their hash), [`env`] (the Secrets each service reads),
//! [`deployment`] (the pod), [`service`] and [`pdb`]; [`room`] is the
//! WaitingRoom as the queue needs it. [`build`] assembles the four.

mod config_map;
mod deployment;
mod env;
mod pdb;
mod room;
mod service;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use urr_crds::Event;
use urr_crds::client_address::ClientAddress;
use urr_crds::event::{EventSpec, ServiceRuntime};

pub use room::QueueRoom;

/// The port every runtime service serves its public API on inside its pod
/// (container and Service port `http`; the Service maps it to 80).
pub const CONTAINER_PORT: i32 = 8080;
/// The port of the internal listener: `/internal/*` (the operator's stats,
/// the payment service's calls to the ticket service), `/metrics` and the
/// probes. Container and Service port `internal`, the same number on both;
/// the chart's NetworkPolicies open it to the operator, Prometheus and the
/// payment pods only.
pub const INTERNAL_PORT: i32 = 9090;
/// Name of the public port, on the container and on the Service.
pub const HTTP_PORT_NAME: &str = "http";
/// Name of the internal port, on the container and on the Service.
pub const INTERNAL_PORT_NAME: &str = "internal";

/// The URL of `service`'s internal listener through its Service, as the
/// operator and the other services reach it.
pub fn internal_url(event: &str, service: ServiceKind) -> String {
    format!("http://{}:{INTERNAL_PORT}", service.child_name(event))
}
/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "urr-operator";
/// Label with the Event's name on every child.
pub const EVENT_LABEL: &str = "urr.dev/event";
/// Pod-template annotation that changes when the ConfigMap does, so pods roll.
pub const CONFIG_HASH_ANNOTATION: &str = "urr.dev/config-hash";

/// The three runtime services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    Queue,
    Ticket,
    Payment,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 3] = [
        ServiceKind::Queue,
        ServiceKind::Ticket,
        ServiceKind::Payment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Queue => "queue",
            ServiceKind::Ticket => "ticket",
            ServiceKind::Payment => "payment",
        }
    }

    pub fn runtime(self, spec: &EventSpec) -> &ServiceRuntime {
        match self {
            ServiceKind::Queue => &spec.services.queue,
            ServiceKind::Ticket => &spec.services.ticket,
            ServiceKind::Payment => &spec.services.payment,
        }
    }

    /// Name of every child of this service: `<event>-<service>` (a valid
    /// Service name because Event names are DNS-1035 labels of ≤ 55 characters).
    pub fn child_name(self, event: &str) -> String {
        format!("{event}-{}", self.as_str())
    }
}

/// Operator-wide defaults.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// `ghcr.io/urr-dev/urr-{service}` plus `:{image_tag}` when the spec names no image.
    pub image_repository: String,
    pub image_tag: String,
    /// Where the queue reads buyers' addresses from, for Events that do not
    /// say (`spec.clientAddress`): set for the cluster's ingress.
    pub client_address: ClientAddress,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            image_repository: "ghcr.io/urr-dev".to_owned(),
            image_tag: env!("CARGO_PKG_VERSION").to_owned(),
            client_address: ClientAddress::default(),
        }
    }
}

/// Why children could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the Event has no {0} (it must come from the API server, or set it for render)")]
    MissingMetadata(&'static str),
}

/// The children of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceChildren {
    pub config_map: ConfigMap,
    pub deployment: Deployment,
    pub service: Service,
    pub pod_disruption_budget: PodDisruptionBudget,
}

fn labels(event: &str, service: ServiceKind) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            format!("urr-{}", service.as_str()),
        ),
        ("app.kubernetes.io/instance".to_owned(), event.to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            service.as_str().to_owned(),
        ),
        ("app.kubernetes.io/part-of".to_owned(), "urr".to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            FIELD_MANAGER.to_owned(),
        ),
        (EVENT_LABEL.to_owned(), event.to_owned()),
    ])
}

fn selector(event: &str, service: ServiceKind) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            format!("urr-{}", service.as_str()),
        ),
        ("app.kubernetes.io/instance".to_owned(), event.to_owned()),
    ])
}

/// Builds the children of `service` running `replicas` pods, behind `room`
/// when a WaitingRoom names the Event.
pub fn build(
    event: &Event,
    service: ServiceKind,
    replicas: i32,
    defaults: &Defaults,
    room: Option<&QueueRoom>,
) -> Result<ServiceChildren, BuildError> {
    let event_name = event
        .metadata
        .name
        .as_deref()
        .ok_or(BuildError::MissingMetadata("name"))?;
    let namespace = event
        .metadata
        .namespace
        .clone()
        .ok_or(BuildError::MissingMetadata("namespace"))?;
    let owner: OwnerReference = event
        .controller_owner_ref(&())
        .ok_or(BuildError::MissingMetadata("uid"))?;
    let spec = &event.spec;
    let name = service.child_name(event_name);
    let labels = labels(event_name, service);
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace),
        labels: Some(labels.clone()),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    let data = config_map::config_data(event_name, spec, service, room, defaults);
    let config_hash = config_map::config_hash(&data);
    let config_map = ConfigMap {
        metadata: meta.clone(),
        data: Some(data),
        ..ConfigMap::default()
    };
    let deployment = deployment::build(
        meta.clone(),
        deployment::Pod {
            event: event_name,
            spec,
            service,
            replicas,
            defaults,
            room,
            name: &name,
            labels: &labels,
            config_hash,
        },
    );
    Ok(ServiceChildren {
        config_map,
        deployment,
        service: service::build(meta.clone(), event_name, service),
        pod_disruption_budget: pdb::build(meta, event_name, service),
    })
}

#[cfg(test)]
pub(crate) mod tests;
