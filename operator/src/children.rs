//! The objects each runtime service of an Event needs: a ConfigMap with its
//! settings, a Deployment, a Service and a PodDisruptionBudget. All carry the
//! Event as controller owner (deleting the Event garbage-collects them) and
//! the same labels, so `kubectl get all -l urr.dev/event=<name>` finds them.
//!
//! Pods run as non-root with a read-only root filesystem, no privilege
//! escalation, no capabilities and no service-account token: the runtime
//! services never talk to the Kubernetes API.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec,
    TopologySpreadConstraint,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use serde_json::json;
use sha2::{Digest, Sha256};
use urr_crds::client_address::ClientAddress;
use urr_crds::event::{EventSpec, JwtAlgorithm, ServiceRuntime};
use urr_crds::payment_provider::PaymentProviderName;
use urr_crds::{Event, SecretKeyRef, WaitingRoom};

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

/// The WaitingRoom in front of an Event, as its queue service needs it: the
/// room's name (its `/v1/rooms/{room}` routes and waiting page), its id
/// `<namespace>/<name>` (signed into every `urr-vwr-token` and compared by the
/// edge with the room's KeyValueStore entry) and the key passes are signed
/// with (the same Secret and key id the WaitingRoom controller publishes to
/// the edge). Wired by the Event controller, so the two can never disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRoom {
    pub name: String,
    pub id: String,
    /// `spec.edge`: the signing key and its id; `None` without an edge gate.
    pub signing: Option<(SecretKeyRef, String)>,
    /// `spec.edge.previousSigningKey`, during a rotation: the queue still
    /// accepts passes signed with it.
    pub previous_signing: Option<(SecretKeyRef, String)>,
    /// `spec.edge.passTtlSeconds`: how long the passes the queue signs live
    /// (the operator retires a rotated-out key after as long).
    pub pass_ttl_seconds: Option<u32>,
}

impl QueueRoom {
    /// The room of `room`, when it names `event` (same namespace).
    pub fn of(room: &WaitingRoom, event: &Event) -> Option<Self> {
        let namespace = room.metadata.namespace.as_deref()?;
        let name = room.metadata.name.as_deref()?;
        if event.metadata.namespace.as_deref() != Some(namespace)
            || event.metadata.name.as_deref() != Some(room.spec.event_ref.name.as_str())
        {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            id: format!("{namespace}/{name}"),
            signing: room
                .spec
                .edge
                .as_ref()
                .map(|edge| (edge.signing_key_ref.clone(), edge.signing_key_id.clone())),
            previous_signing: room
                .spec
                .edge
                .as_ref()
                .and_then(|edge| edge.previous_signing_key.as_ref())
                .map(|previous| (previous.key_ref.clone(), previous.id.clone())),
            pass_ttl_seconds: room.spec.edge.as_ref().map(|edge| edge.pass_ttl_seconds),
        })
    }

    /// The room of `event` among `rooms`: the first by name when several
    /// name it (the WaitingRoom controller reports the others as conflicting).
    pub fn find<'a>(
        rooms: impl IntoIterator<Item = &'a WaitingRoom>,
        event: &Event,
    ) -> Option<Self> {
        rooms
            .into_iter()
            .filter(|room| room.metadata.deletion_timestamp.is_none())
            .filter_map(|room| Self::of(room, event))
            .min_by(|a, b| a.name.cmp(&b.name))
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

/// The runtime settings of one service: non-secret values only, so the
/// ConfigMap can be read by anyone who can read the namespace.
fn config_data(
    event: &str,
    spec: &EventSpec,
    service: ServiceKind,
    room: Option<&QueueRoom>,
    defaults: &Defaults,
) -> BTreeMap<String, String> {
    let endpoint = |kind: ServiceKind| format!("http://{}", kind.child_name(event));
    let sections: Vec<serde_json::Value> = spec
        .seat_map
        .sections
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name, "rows": s.rows, "seatsPerRow": s.seats_per_row, "capacity": s.capacity, "price": s.price}))
        .collect();
    let settings = json!({
        "event": event,
        "displayName": spec.display_name,
        "salesOpenAt": spec.sales_open_at.0.to_string(),
        "salesCloseAt": spec.sales_close_at.0.to_string(),
        "holdTimeoutSeconds": spec.hold_timeout_seconds,
        "limits": spec.limits,
        "seatMap": {"sections": sections},
    });
    let mut data = BTreeMap::from([
        ("URR_EVENT_ID".to_owned(), event.to_owned()),
        ("URR_SERVICE".to_owned(), service.as_str().to_owned()),
        ("URR_LISTEN".to_owned(), format!("0.0.0.0:{CONTAINER_PORT}")),
        // Explicit although it is the services' default: a local node
        // (tools/node) rewrites listen addresses it sees in the env only.
        (
            "URR_INTERNAL_LISTEN".to_owned(),
            format!("0.0.0.0:{INTERNAL_PORT}"),
        ),
        ("URR_LOG_FORMAT".to_owned(), "json".to_owned()),
        ("URR_QUEUE_URL".to_owned(), endpoint(ServiceKind::Queue)),
        // The payment service calls /internal/holds/*, which only the
        // internal listener serves.
        (
            "URR_TICKET_URL".to_owned(),
            internal_url(event, ServiceKind::Ticket),
        ),
        ("URR_PAYMENT_URL".to_owned(), endpoint(ServiceKind::Payment)),
        (
            "URR_EVENT_SETTINGS".to_owned(),
            serde_json::to_string(&settings).unwrap_or_default(),
        ),
    ]);
    if service == ServiceKind::Queue {
        let address = spec.client_address.unwrap_or(defaults.client_address);
        for (name, value) in address.service_env() {
            data.insert(name.to_owned(), value);
        }
    }
    match (service, room) {
        (ServiceKind::Queue, Some(room)) => {
            data.insert("URR_ROOM_NAME".to_owned(), room.name.clone());
            data.insert("URR_ROOM_ID".to_owned(), room.id.clone());
            if let Some((_, key_id)) = &room.signing {
                data.insert("URR_VWR_KEY_ID".to_owned(), key_id.clone());
            }
            if let Some((_, key_id)) = &room.previous_signing {
                data.insert("URR_VWR_PREVIOUS_KEY_ID".to_owned(), key_id.clone());
            }
            if let Some(ttl) = room.pass_ttl_seconds {
                data.insert("URR_VWR_TOKEN_TTL_SECONDS".to_owned(), ttl.to_string());
            }
        }
        (ServiceKind::Payment, _) => {
            // The provider posts webhooks to the Service, so any replica
            // takes them (not the pod that created the payment).
            data.insert("URR_PUBLIC_URL".to_owned(), endpoint(ServiceKind::Payment));
            // Until when buyers refund their own orders (absent: no deadline).
            if let Some(setting) = spec
                .refund_policy
                .as_ref()
                .and_then(|p| p.service_setting())
            {
                data.insert("URR_BUYER_REFUNDS_UNTIL".to_owned(), setting);
            }
            if let Some(provider) = &spec.services.payment.provider {
                data.insert(
                    "URR_PAYMENT_PROVIDER".to_owned(),
                    provider.name.service_name().to_owned(),
                );
                if let (Some(base), Some(base_env)) =
                    (&provider.api_base, provider.name.api_base_env())
                {
                    data.insert(base_env.to_owned(), base.clone());
                }
            }
        }
        _ => {}
    }
    let jwt = &spec.auth.user_jwt;
    if let (JwtAlgorithm::RS256, Some(url)) = (jwt.algorithm, &jwt.jwks_url) {
        data.insert("URR_USER_JWKS_URL".to_owned(), url.clone());
    }
    if let Some(issuer) = &jwt.issuer {
        data.insert("URR_USER_JWT_ISSUER".to_owned(), issuer.clone());
    }
    if let Some(audience) = &jwt.audience {
        data.insert("URR_USER_JWT_AUDIENCE".to_owned(), audience.clone());
    }
    data
}

fn secret_env(name: &str, reference: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: reference.name.clone(),
                key: reference.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Secrets reach the pod as `valueFrom.secretKeyRef` only; their values never
/// pass through the operator. The spec's own `env` comes last and wins.
fn env(
    spec: &EventSpec,
    service: ServiceKind,
    runtime: &ServiceRuntime,
    room: Option<&QueueRoom>,
) -> Vec<EnvVar> {
    let connections = &runtime.connections;
    let signing_key = match (service, room) {
        (
            ServiceKind::Queue,
            Some(QueueRoom {
                signing: Some((key, _)),
                ..
            }),
        ) => Some(key),
        _ => None,
    };
    let previous_signing_key = match (service, room) {
        (ServiceKind::Queue, Some(room)) => room.previous_signing.as_ref().map(|(key, _)| key),
        _ => None,
    };
    let webhook_secret =
        (service == ServiceKind::Payment).then_some(&spec.auth.payment_webhook_secret_ref);
    let provider = spec
        .services
        .payment
        .provider
        .as_ref()
        .filter(|_| service == ServiceKind::Payment);
    let mut env: Vec<EnvVar> = [
        ("URR_REDIS_URL", connections.redis_url_ref.as_ref()),
        ("URR_DATABASE_URL", connections.database_url_ref.as_ref()),
        ("URR_KAFKA_BROKERS", connections.kafka_brokers_ref.as_ref()),
        (
            "URR_USER_JWT_SECRET",
            spec.auth.user_jwt.secret_ref.as_ref(),
        ),
        ("URR_ENTRY_TOKEN_KEY", Some(&spec.auth.entry_token_key_ref)),
        ("URR_SERVICE_TOKEN", Some(&spec.auth.service_token_ref)),
        ("URR_VWR_SIGNING_KEY", signing_key),
        ("URR_VWR_PREVIOUS_SIGNING_KEY", previous_signing_key),
        ("URR_ORIGIN_SECRET", spec.auth.origin_secret_ref.as_ref()),
        ("URR_SANDBOX_WEBHOOK_SECRET", webhook_secret),
        (
            "URR_STRIPE_SECRET_KEY",
            provider
                .filter(|p| p.name == PaymentProviderName::Stripe)
                .and_then(|p| p.secret_key_ref.as_ref()),
        ),
        (
            "URR_TOSS_SECRET_KEY",
            provider
                .filter(|p| p.name == PaymentProviderName::Toss)
                .and_then(|p| p.secret_key_ref.as_ref()),
        ),
        (
            "URR_STRIPE_WEBHOOK_SECRET",
            provider.and_then(|p| p.webhook_secret_ref.as_ref()),
        ),
        (
            "URR_STRIPE_PREVIOUS_WEBHOOK_SECRET",
            provider.and_then(|p| p.previous_webhook_secret_ref.as_ref()),
        ),
    ]
    .into_iter()
    .filter(|(name, _)| secrets_read_by(service).contains(name))
    .filter_map(|(name, reference)| reference.map(|r| secret_env(name, r)))
    .collect();
    env.extend(runtime.env.iter().cloned());
    env
}

/// The secret variables each service's config (`runtime-services/*/src/config.rs`)
/// reads: a pod gets no other. The internet-facing queue must not hold the
/// service token that confirms holds, nor payment the entry-token key.
fn secrets_read_by(service: ServiceKind) -> &'static [&'static str] {
    match service {
        ServiceKind::Queue => &[
            "URR_REDIS_URL",
            "URR_USER_JWT_SECRET",
            "URR_ENTRY_TOKEN_KEY",
            "URR_VWR_SIGNING_KEY",
            "URR_VWR_PREVIOUS_SIGNING_KEY",
            "URR_ORIGIN_SECRET",
        ],
        ServiceKind::Ticket => &[
            "URR_REDIS_URL",
            "URR_DATABASE_URL",
            "URR_KAFKA_BROKERS",
            "URR_USER_JWT_SECRET",
            "URR_ENTRY_TOKEN_KEY",
            "URR_SERVICE_TOKEN",
            "URR_ORIGIN_SECRET",
        ],
        ServiceKind::Payment => &[
            "URR_DATABASE_URL",
            "URR_KAFKA_BROKERS",
            "URR_USER_JWT_SECRET",
            "URR_SERVICE_TOKEN",
            "URR_SANDBOX_WEBHOOK_SECRET",
            "URR_STRIPE_SECRET_KEY",
            "URR_STRIPE_WEBHOOK_SECRET",
            "URR_STRIPE_PREVIOUS_WEBHOOK_SECRET",
            "URR_TOSS_SECRET_KEY",
            "URR_ORIGIN_SECRET",
        ],
    }
}

/// A probe on the internal port: a public listener saturated by a sale
/// (all its connection slots taken) must not fail the probes and get
/// healthy pods restarted or taken out of the Service.
fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(INTERNAL_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn config_hash(data: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..12])
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
    let runtime = service.runtime(spec);
    let name = service.child_name(event_name);
    let labels = labels(event_name, service);
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace),
        labels: Some(labels.clone()),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    let data = config_data(event_name, spec, service, room, defaults);
    let hash = config_hash(&data);
    let config_map = ConfigMap {
        metadata: meta.clone(),
        data: Some(data),
        ..ConfigMap::default()
    };
    let image = runtime.image.clone().unwrap_or_else(|| {
        format!(
            "{}/urr-{}:{}",
            defaults.image_repository,
            service.as_str(),
            defaults.image_tag
        )
    });
    let container = Container {
        name: service.as_str().to_owned(),
        image: Some(image),
        image_pull_policy: runtime.image_pull_policy.map(|p| format!("{p:?}")),
        ports: Some(vec![
            ContainerPort {
                name: Some(HTTP_PORT_NAME.to_owned()),
                container_port: CONTAINER_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(INTERNAL_PORT_NAME.to_owned()),
                container_port: INTERNAL_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: name.clone(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(env(spec, service, runtime, room)),
        resources: runtime.resources.clone(),
        readiness_probe: Some(http_probe("/readyz", 5, 2)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let deployment = Deployment {
        metadata: meta.clone(),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector(event_name, service)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".to_owned())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    annotations: Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_owned(), hash)])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(30),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65_532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: "topology.kubernetes.io/zone".to_owned(),
                        when_unsatisfiable: "ScheduleAnyway".to_owned(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector(event_name, service)),
                            ..LabelSelector::default()
                        }),
                        ..TopologySpreadConstraint::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };
    let service_object = Service {
        metadata: meta.clone(),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector(event_name, service)),
            // `http` first: what reads "the" port of a Service (a local
            // node's status, kubectl port-forward svc/...) gets the API.
            ports: Some(vec![
                ServicePort {
                    name: Some(HTTP_PORT_NAME.to_owned()),
                    port: 80,
                    target_port: Some(IntOrString::String(HTTP_PORT_NAME.to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some(INTERNAL_PORT_NAME.to_owned()),
                    port: INTERNAL_PORT,
                    target_port: Some(IntOrString::String(INTERNAL_PORT_NAME.to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let pod_disruption_budget = PodDisruptionBudget {
        metadata: meta,
        spec: Some(PodDisruptionBudgetSpec {
            // One pod at a time, whatever the scale: a drain never takes a
            // service down during a sale.
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(event_name, service)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    };
    Ok(ServiceChildren {
        config_map,
        deployment,
        service: service_object,
        pod_disruption_budget,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `examples/event.yaml`, as if it came from the API server.
    pub(crate) fn example_event() -> Event {
        let text = include_str!("../../examples/event.yaml");
        let mut event: Event = serde_yaml::from_str(text).expect("example event");
        event.metadata.namespace = Some("urr-demo".to_owned());
        event.metadata.uid = Some("3f0e2d1c-0000-4000-8000-000000000001".to_owned());
        event
    }

    #[test]
    fn children_are_owned_labelled_and_named_after_the_event() {
        let event = example_event();
        for service in ServiceKind::ALL {
            let children = build(&event, service, 3, &Defaults::default(), None).expect("build");
            let name = format!("aurora-seoul-2026-{}", service.as_str());
            for meta in [
                &children.config_map.metadata,
                &children.deployment.metadata,
                &children.service.metadata,
                &children.pod_disruption_budget.metadata,
            ] {
                assert_eq!(meta.name.as_deref(), Some(name.as_str()));
                assert_eq!(meta.namespace.as_deref(), Some("urr-demo"));
                let owner = &meta.owner_references.as_ref().expect("owner")[0];
                assert_eq!(
                    (owner.kind.as_str(), owner.name.as_str(), owner.controller),
                    ("Event", "aurora-seoul-2026", Some(true))
                );
                assert_eq!(
                    meta.labels.as_ref().expect("labels")[EVENT_LABEL],
                    "aurora-seoul-2026"
                );
            }
            let deployment = children.deployment.spec.expect("spec");
            assert_eq!(deployment.replicas, Some(3));
            let template_labels = deployment
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .expect("labels");
            for (key, value) in deployment.selector.match_labels.expect("selector") {
                assert_eq!(
                    template_labels.get(&key),
                    Some(&value),
                    "the selector matches the pods"
                );
            }
        }
    }

    #[test]
    fn secrets_are_references_and_the_spec_env_comes_last() {
        let event = example_event();
        let children =
            build(&event, ServiceKind::Ticket, 2, &Defaults::default(), None).expect("build");
        let pod = children
            .deployment
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod");
        let env = pod.containers[0].env.clone().expect("env");
        let by_name = |name: &str| env.iter().find(|e| e.name == name).cloned();
        for name in [
            "URR_REDIS_URL",
            "URR_DATABASE_URL",
            "URR_KAFKA_BROKERS",
            "URR_USER_JWT_SECRET",
            "URR_ENTRY_TOKEN_KEY",
            "URR_SERVICE_TOKEN",
        ] {
            let var = by_name(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(var.value.is_none(), "{name} must not carry a value");
            assert!(
                var.value_from.and_then(|v| v.secret_key_ref).is_some(),
                "{name} comes from a Secret"
            );
        }
        let config = children.config_map.data.expect("data");
        assert!(
            config.values().all(|v| !v.contains("secret")),
            "no secret material in the ConfigMap"
        );
        // Payment's spec env is appended after ours.
        let mut event = event;
        event.spec.services.payment.env.push(EnvVar {
            name: "URR_SANDBOX_LATENCY_MS".to_owned(),
            value: Some("50".to_owned()),
            ..EnvVar::default()
        });
        let payment =
            build(&event, ServiceKind::Payment, 2, &Defaults::default(), None).expect("build");
        let payment_env = payment
            .deployment
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod")
            .containers[0]
            .env
            .clone()
            .expect("env");
        assert_eq!(
            payment_env.last().map(|e| e.name.as_str()),
            Some("URR_SANDBOX_LATENCY_MS")
        );
        assert!(
            payment_env.iter().all(|e| e.name != "URR_REDIS_URL"),
            "payment has no Redis"
        );
    }

    /// The names of the Secret-backed variables `service`'s pods get.
    fn secret_names(service: ServiceKind) -> Vec<String> {
        let event = example_event();
        let room = QueueRoom::find([&example_room()], &event);
        let children =
            build(&event, service, 2, &Defaults::default(), room.as_ref()).expect("build");
        let mut names: Vec<String> = env_of(&children)
            .into_iter()
            .filter(|e| {
                e.value_from
                    .as_ref()
                    .is_some_and(|v| v.secret_key_ref.is_some())
            })
            .map(|e| e.name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn with_an_origin_secret_every_service_gets_it() {
        let mut event = example_event();
        event.spec.auth.origin_secret_ref = Some(SecretKeyRef {
            name: "urr-origin".into(),
            key: "verify".into(),
        });
        for service in [
            ServiceKind::Queue,
            ServiceKind::Ticket,
            ServiceKind::Payment,
        ] {
            let children = build(&event, service, 2, &Defaults::default(), None).expect("build");
            let origin = secret_ref_of(&children, "URR_ORIGIN_SECRET")
                .unwrap_or_else(|| panic!("{service:?} has no URR_ORIGIN_SECRET"));
            assert_eq!(
                (origin.name.as_str(), origin.key.as_str()),
                ("urr-origin", "verify")
            );
        }
    }

    #[test]
    fn the_queue_gets_only_the_secrets_it_reads() {
        assert_eq!(
            secret_names(ServiceKind::Queue),
            [
                "URR_ENTRY_TOKEN_KEY",
                "URR_REDIS_URL",
                "URR_USER_JWT_SECRET",
                "URR_VWR_SIGNING_KEY"
            ]
        );
    }

    #[test]
    fn the_ticket_service_gets_only_the_secrets_it_reads() {
        assert_eq!(
            secret_names(ServiceKind::Ticket),
            [
                "URR_DATABASE_URL",
                "URR_ENTRY_TOKEN_KEY",
                "URR_KAFKA_BROKERS",
                "URR_REDIS_URL",
                "URR_SERVICE_TOKEN",
                "URR_USER_JWT_SECRET"
            ]
        );
    }

    #[test]
    fn the_payment_service_gets_only_the_secrets_it_reads() {
        assert_eq!(
            secret_names(ServiceKind::Payment),
            [
                "URR_DATABASE_URL",
                "URR_KAFKA_BROKERS",
                "URR_SANDBOX_WEBHOOK_SECRET",
                "URR_SERVICE_TOKEN",
                "URR_USER_JWT_SECRET"
            ]
        );
    }

    fn env_of(children: &ServiceChildren) -> Vec<EnvVar> {
        children
            .deployment
            .spec
            .as_ref()
            .and_then(|d| d.template.spec.as_ref())
            .and_then(|p| p.containers[0].env.clone())
            .unwrap_or_default()
    }

    /// The Secret reference of the container's env var `name`, if it has one.
    fn secret_ref_of(children: &ServiceChildren, name: &str) -> Option<SecretKeySelector> {
        env_of(children)
            .into_iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from)
            .and_then(|v| v.secret_key_ref)
    }

    /// The queue reads the buyer's address where the Event says, else where
    /// the operator's default (the chart's ingress) says; never a header
    /// nobody set.
    #[test]
    fn the_queue_reads_client_addresses_where_the_event_or_the_operator_says() {
        use urr_crds::client_address::ClientAddressSource;
        let queue_data = |event: &Event, defaults: &Defaults| {
            build(event, ServiceKind::Queue, 1, defaults, None)
                .expect("build")
                .config_map
                .data
                .expect("data")
        };
        let mut event = example_event();
        event.spec.client_address = None;
        let data = queue_data(&event, &Defaults::default());
        assert!(
            !data.contains_key("URR_CLIENT_IP_HEADER"),
            "peer by default"
        );
        let behind_ingress = Defaults {
            client_address: ClientAddress {
                source: ClientAddressSource::XForwardedFor,
                trusted_hops: 1,
            },
            ..Defaults::default()
        };
        let data = queue_data(&event, &behind_ingress);
        assert_eq!(data["URR_CLIENT_IP_HEADER"], "X-Forwarded-For");
        assert_eq!(data["URR_TRUSTED_PROXY_HOPS"], "1");
        event.spec.client_address = Some(ClientAddress {
            source: ClientAddressSource::CloudFrontViewerAddress,
            trusted_hops: 1,
        });
        let data = queue_data(&event, &behind_ingress);
        assert_eq!(data["URR_CLIENT_IP_HEADER"], "CloudFront-Viewer-Address");
        let ticket = build(&event, ServiceKind::Ticket, 1, &behind_ingress, None)
            .expect("build")
            .config_map
            .data
            .expect("data");
        assert!(!ticket.contains_key("URR_CLIENT_IP_HEADER"));
    }

    /// The Event names the provider; the payment pods get its name, its API
    /// and its keys as Secret references, and no other service gets them.
    #[test]
    fn the_payment_provider_and_its_keys_reach_only_the_payment_pods() {
        use urr_crds::payment_provider::PaymentProvider;
        let mut event = example_event();
        let key = |key: &str| SecretKeyRef {
            name: "urr-stripe".to_owned(),
            key: key.to_owned(),
        };
        event.spec.services.payment.provider = Some(PaymentProvider {
            name: PaymentProviderName::Stripe,
            secret_key_ref: Some(key("secret-key")),
            webhook_secret_ref: Some(key("webhook-secret")),
            previous_webhook_secret_ref: Some(key("previous-webhook-secret")),
            api_base: Some("http://127.0.0.1:12111".to_owned()),
        });
        let payment =
            build(&event, ServiceKind::Payment, 2, &Defaults::default(), None).expect("build");
        let data = payment.config_map.data.clone().expect("data");
        assert_eq!(data["URR_PAYMENT_PROVIDER"], "stripe");
        assert_eq!(data["URR_STRIPE_API_BASE"], "http://127.0.0.1:12111");
        for (name, secret_key) in [
            ("URR_STRIPE_SECRET_KEY", "secret-key"),
            ("URR_STRIPE_WEBHOOK_SECRET", "webhook-secret"),
            (
                "URR_STRIPE_PREVIOUS_WEBHOOK_SECRET",
                "previous-webhook-secret",
            ),
        ] {
            let reference = secret_ref_of(&payment, name).unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(
                (reference.name.as_str(), reference.key.as_str()),
                ("urr-stripe", secret_key)
            );
        }
        assert!(secret_ref_of(&payment, "URR_TOSS_SECRET_KEY").is_none());
        for service in [ServiceKind::Queue, ServiceKind::Ticket] {
            let children = build(&event, service, 2, &Defaults::default(), None).expect("build");
            assert!(
                secret_ref_of(&children, "URR_STRIPE_SECRET_KEY").is_none(),
                "{service:?}"
            );
        }
    }

    /// Toss takes its secret key from the same reference, under its own
    /// variable; the Stripe variables stay unset, and so does its API base.
    #[test]
    fn the_toss_key_reaches_the_payment_pods_under_its_own_name() {
        use urr_crds::payment_provider::PaymentProvider;
        let mut event = example_event();
        event.spec.services.payment.provider = Some(PaymentProvider {
            name: PaymentProviderName::Toss,
            secret_key_ref: Some(SecretKeyRef {
                name: "urr-toss".to_owned(),
                key: "secret-key".to_owned(),
            }),
            webhook_secret_ref: None,
            previous_webhook_secret_ref: None,
            api_base: Some("http://toss-fake:8080".to_owned()),
        });
        let payment =
            build(&event, ServiceKind::Payment, 2, &Defaults::default(), None).expect("build");
        let data = payment.config_map.data.clone().expect("data");
        assert_eq!(data["URR_PAYMENT_PROVIDER"], "toss");
        assert_eq!(data["URR_TOSS_API_BASE"], "http://toss-fake:8080");
        assert!(!data.contains_key("URR_STRIPE_API_BASE"));
        let reference = secret_ref_of(&payment, "URR_TOSS_SECRET_KEY").expect("the Toss key");
        assert_eq!(
            (reference.name.as_str(), reference.key.as_str()),
            ("urr-toss", "secret-key")
        );
        assert!(secret_ref_of(&payment, "URR_STRIPE_SECRET_KEY").is_none());
        for service in [ServiceKind::Queue, ServiceKind::Ticket] {
            let children = build(&event, service, 2, &Defaults::default(), None).expect("build");
            assert!(
                secret_ref_of(&children, "URR_TOSS_SECRET_KEY").is_none(),
                "{service:?}"
            );
        }
    }

    fn example_room() -> WaitingRoom {
        let text = include_str!("../../examples/waitingroom.yaml");
        let mut room: WaitingRoom = serde_yaml::from_str(text).expect("example room");
        room.metadata.namespace = Some("urr-demo".to_owned());
        room
    }

    /// The two gaps only `urr-operator local` used to fill: the payment pods
    /// get the webhook secret they refuse to start without, and the queue
    /// signs passes for `<namespace>/<room>` with the room's own key, as the
    /// edge entry says.
    #[test]
    fn the_payment_gets_its_webhook_secret_and_the_queue_its_room() {
        let event = example_event();
        let room =
            QueueRoom::find([&example_room()], &event).expect("the example room names the event");
        assert_eq!(room.id, "urr-demo/aurora-seoul-2026");

        let payment = build(
            &event,
            ServiceKind::Payment,
            2,
            &Defaults::default(),
            Some(&room),
        )
        .expect("build");
        let secret = secret_ref_of(&payment, "URR_SANDBOX_WEBHOOK_SECRET")
            .expect("the webhook secret comes from a Secret");
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("urr-auth", "payment-webhook-secret")
        );
        let data = payment.config_map.data.expect("data");
        assert_eq!(data["URR_PUBLIC_URL"], "http://aurora-seoul-2026-payment");

        let queue = build(
            &event,
            ServiceKind::Queue,
            2,
            &Defaults::default(),
            Some(&room),
        )
        .expect("build");
        let data = queue.config_map.data.clone().expect("data");
        assert_eq!(data["URR_ROOM_ID"], "urr-demo/aurora-seoul-2026");
        assert_eq!(data["URR_ROOM_NAME"], "aurora-seoul-2026");
        assert_eq!(data["URR_VWR_KEY_ID"], "2026-11");
        assert_eq!(data["URR_VWR_TOKEN_TTL_SECONDS"], "14400");
        assert!(!data.contains_key("URR_VWR_PREVIOUS_KEY_ID"));
        let mut rotating = example_room();
        if let Some(edge) = rotating.spec.edge.as_mut() {
            edge.previous_signing_key = Some(urr_crds::waiting_room::SigningKey {
                key_ref: SecretKeyRef {
                    name: "urr-edge-signing".into(),
                    key: "previous".into(),
                },
                id: "2026-10".into(),
            });
        }
        let rotating_room = QueueRoom::find([&rotating], &event).expect("room");
        let rotating_queue = build(
            &event,
            ServiceKind::Queue,
            2,
            &Defaults::default(),
            Some(&rotating_room),
        )
        .expect("build");
        let rotating_data = rotating_queue.config_map.data.clone().expect("data");
        assert_eq!(rotating_data["URR_VWR_PREVIOUS_KEY_ID"], "2026-10");
        let previous = secret_ref_of(&rotating_queue, "URR_VWR_PREVIOUS_SIGNING_KEY")
            .expect("the previous pass key comes from the room's Secret");
        assert_eq!(previous.key, "previous");
        let key = secret_ref_of(&queue, "URR_VWR_SIGNING_KEY")
            .expect("the pass key comes from the room's Secret");
        assert_eq!(
            (key.name.as_str(), key.key.as_str()),
            ("urr-edge-signing", "current")
        );

        // A room of another event, or in another namespace, is not this one's.
        let mut other = example_room();
        other.metadata.namespace = Some("elsewhere".to_owned());
        assert_eq!(QueueRoom::find([&other], &event), None);
        let mut other = example_room();
        other.spec.event_ref.name = "another-event".to_owned();
        assert_eq!(QueueRoom::find([&other], &event), None);
    }

    #[test]
    fn pods_are_locked_down() {
        let event = example_event();
        let children =
            build(&event, ServiceKind::Queue, 2, &Defaults::default(), None).expect("build");
        let pod = children
            .deployment
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod");
        assert_eq!(pod.automount_service_account_token, Some(false));
        let security = pod.containers[0]
            .security_context
            .clone()
            .expect("security context");
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some(concat!(
                "ghcr.io/urr-dev/urr-queue:",
                env!("CARGO_PKG_VERSION")
            ))
        );
    }

    #[test]
    fn a_spec_change_changes_the_config_hash_and_nothing_else_does() {
        let event = example_event();
        let hash = |event: &Event, replicas| {
            build(
                event,
                ServiceKind::Ticket,
                replicas,
                &Defaults::default(),
                None,
            )
            .expect("build")
            .deployment
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .expect("annotations")[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let before = hash(&event, 2);
        assert_eq!(before, hash(&event, 7), "scaling does not roll pods");
        let mut changed = event.clone();
        changed.spec.hold_timeout_seconds += 60;
        assert_ne!(before, hash(&changed, 2), "a settings change rolls pods");
    }

    #[test]
    fn the_refund_policy_reaches_the_payment_service_only() {
        let mut event = example_event();
        event.spec.refund_policy = serde_json::from_value(serde_json::json!({
            "buyerRefundsUntil": "2026-12-24T11:00:00Z"
        }))
        .expect("policy");
        let data = |event: &Event, service| {
            build(event, service, 2, &Defaults::default(), None)
                .expect("build")
                .config_map
                .data
                .expect("data")
        };
        assert_eq!(
            data(&event, ServiceKind::Payment)["URR_BUYER_REFUNDS_UNTIL"],
            "1798110000"
        );
        assert!(!data(&event, ServiceKind::Ticket).contains_key("URR_BUYER_REFUNDS_UNTIL"));
        event.spec.refund_policy =
            serde_json::from_value(serde_json::json!({"buyerRefunds": false})).expect("policy");
        assert_eq!(
            data(&event, ServiceKind::Payment)["URR_BUYER_REFUNDS_UNTIL"],
            "never"
        );
        event.spec.refund_policy = None;
        assert!(!data(&event, ServiceKind::Payment).contains_key("URR_BUYER_REFUNDS_UNTIL"));
    }

    #[test]
    fn an_event_without_uid_cannot_own_children() {
        let mut event = example_event();
        event.metadata.uid = None;
        assert!(matches!(
            build(&event, ServiceKind::Queue, 1, &Defaults::default(), None),
            Err(BuildError::MissingMetadata("uid"))
        ));
    }
}
