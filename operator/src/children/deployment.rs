//! The Deployment of one service: a locked-down pod (non-root, read-only
//! root filesystem, no capabilities, no service-account token) whose
//! template carries the ConfigMap's hash, so a settings change rolls it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecurityContext,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use urr_crds::event::EventSpec;

use super::{
    CONFIG_HASH_ANNOTATION, CONTAINER_PORT, Defaults, HTTP_PORT_NAME, INTERNAL_PORT,
    INTERNAL_PORT_NAME, QueueRoom, ServiceKind, selector,
};

/// What the Deployment of one service is built from.
pub(super) struct Pod<'a> {
    pub(super) event: &'a str,
    pub(super) spec: &'a EventSpec,
    pub(super) service: ServiceKind,
    pub(super) replicas: i32,
    pub(super) defaults: &'a Defaults,
    pub(super) room: Option<&'a QueueRoom>,
    /// The child name, shared with the ConfigMap the container reads.
    pub(super) name: &'a str,
    pub(super) labels: &'a BTreeMap<String, String>,
    pub(super) config_hash: String,
}

/// The Deployment of `pod.service`, with `meta` as its own metadata.
pub(super) fn build(meta: ObjectMeta, pod: Pod<'_>) -> Deployment {
    let (event_name, service) = (pod.event, pod.service);
    let container = container(pod.spec, service, pod.defaults, pod.room, pod.name);
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: Some(pod.replicas),
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
                    labels: Some(pod.labels.clone()),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_owned(),
                        pod.config_hash,
                    )])),
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
    }
}

fn container(
    spec: &EventSpec,
    service: ServiceKind,
    defaults: &Defaults,
    room: Option<&QueueRoom>,
    name: &str,
) -> Container {
    let runtime = service.runtime(spec);
    let image = runtime.image.clone().unwrap_or_else(|| {
        format!(
            "{}/urr-{}:{}",
            defaults.image_repository,
            service.as_str(),
            defaults.image_tag
        )
    });
    Container {
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
                name: name.to_owned(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(super::env::env(spec, service, runtime, room)),
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
