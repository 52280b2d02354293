//! A Deployment's pod template, read once per template hash, and turned
//! into the exact process a pod of it runs: program, arguments, environment.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerPort, PodTemplateSpec};
use sha2::{Digest, Sha256};

use crate::env::{self, Allocatable, EnvError, Environment, ObjectSource, PodFacts, References};
use crate::image::{self, ImageError};
use crate::network;
use crate::probe::{ProbeError, ProbeSpec};

/// The node name pods see in `spec.nodeName`.
pub const NODE_NAME: &str = "urr-local-node";
/// The address pods see in `status.hostIP`.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// Longest wait between SIGTERM and SIGKILL: a developer's Ctrl-C or a
/// rollout should not wait half a minute per pod on a local machine.
pub const MAX_GRACE: Duration = Duration::from_secs(10);

/// Why a template cannot run here. Logged, and shown as the Deployment's error.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the Deployment has no spec")]
    NoSpec,
    #[error("the pod template has no containers")]
    NoContainers,
    #[error(
        "the pod template has {0} containers; this node runs one container per pod (a pod's containers would share one network namespace, which local processes cannot)"
    )]
    ManyContainers(usize),
    #[error("containerPort {0} is not a TCP port number")]
    BadContainerPort(i32),
    #[error("{which} probe: {source}")]
    Probe {
        which: &'static str,
        #[source]
        source: ProbeError,
    },
    #[error("the pod template cannot be serialized for its hash: {0}")]
    Hash(#[source] serde_json::Error),
}

/// The first 10 hex digits of the SHA-256 of the template's JSON: changes
/// whenever anything in the template does, annotations included, which is
/// how the operator rolls pods when a ConfigMap changes.
pub fn template_hash(template: &PodTemplateSpec) -> Result<String, TemplateError> {
    let json = serde_json::to_vec(template).map_err(TemplateError::Hash)?;
    let digest = Sha256::digest(&json);
    Ok(hex::encode(&digest[..5]))
}

/// A pod template this node can run.
#[derive(Debug, Clone)]
pub struct Template {
    pub hash: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub container: Container,
    pub ports: Vec<ContainerPort>,
    /// TCP containerPorts, for the listen-address substitution.
    pub listen_ports: BTreeSet<u16>,
    pub service_account: String,
    /// SIGTERM to SIGKILL, capped at [`MAX_GRACE`].
    pub grace: Duration,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub references: References,
    /// What of the template this node ignores, to be logged once.
    pub warnings: Vec<String>,
}

impl Template {
    pub fn from_spec(template: &PodTemplateSpec) -> Result<Self, TemplateError> {
        let hash = template_hash(template)?;
        let spec = template.spec.as_ref().ok_or(TemplateError::NoSpec)?;
        let container = match spec.containers.as_slice() {
            [] => return Err(TemplateError::NoContainers),
            [one] => one.clone(),
            many => return Err(TemplateError::ManyContainers(many.len())),
        };
        let mut warnings = Vec::new();
        if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
            let names: Vec<&str> = init.iter().map(|c| c.name.as_str()).collect();
            warnings.push(format!("init containers are not run: {}", names.join(", ")));
        }
        if container.startup_probe.is_some() {
            warnings.push("the startupProbe is ignored".to_owned());
        }
        if container.lifecycle.is_some() {
            warnings.push("lifecycle hooks (postStart, preStop) are not run".to_owned());
        }
        if container
            .volume_mounts
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        {
            warnings.push("volumeMounts are not mounted".to_owned());
        }
        let ports = container.ports.clone().unwrap_or_default();
        let mut listen_ports = BTreeSet::new();
        for port in &ports {
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            let number = u16::try_from(port.container_port)
                .ok()
                .filter(|p| *p != 0)
                .ok_or(TemplateError::BadContainerPort(port.container_port))?;
            listen_ports.insert(number);
        }
        let mut probe = |which: &'static str, probe: Option<&k8s_openapi::api::core::v1::Probe>| {
            match probe.map(|p| ProbeSpec::from_probe(p, &ports)).transpose() {
                Ok(spec) => Ok(spec),
                // The kubelet would run it; without gRPC health checking here,
                // the pod is treated as if it had none.
                Err(ProbeError::Grpc) => {
                    warnings.push(format!("the gRPC {which} probe is ignored"));
                    Ok(None)
                }
                Err(source) => Err(TemplateError::Probe { which, source }),
            }
        };
        let readiness = probe("readiness", container.readiness_probe.as_ref())?;
        let liveness = probe("liveness", container.liveness_probe.as_ref())?;
        let grace = spec
            .termination_grace_period_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(DEFAULT_GRACE, Duration::from_secs)
            .min(MAX_GRACE);
        let metadata = template.metadata.clone().unwrap_or_default();
        Ok(Self {
            hash,
            labels: metadata.labels.unwrap_or_default(),
            annotations: metadata.annotations.unwrap_or_default(),
            references: References::of(&container),
            container,
            ports,
            listen_ports,
            // The API server's service-account admission defaults it.
            service_account: spec
                .service_account_name
                .clone()
                .or_else(|| spec.service_account.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            grace,
            readiness,
            liveness,
            warnings,
        })
    }

    /// The process a pod of this template runs, resolved against the
    /// ConfigMaps and Secrets in `objects`.
    pub fn launch(
        &self,
        pod: &PodName<'_>,
        context: &LaunchContext,
        objects: &dyn ObjectSource,
    ) -> Result<LaunchSpec, LaunchError> {
        let facts = PodFacts {
            name: pod.name,
            namespace: &context.namespace,
            uid: pod.uid,
            labels: &self.labels,
            annotations: &self.annotations,
            node_name: NODE_NAME,
            service_account: &self.service_account,
            pod_ip: pod.ip,
            host_ip: HOST_IP,
        };
        let mut resolved = env::resolve(&self.container, &facts, &context.allocatable, objects)?;
        for value in resolved.env.values_mut() {
            if let Some(local) = network::substitute_listen(value, pod.ip, &self.listen_ports) {
                *value = local;
            }
        }
        let command = env::expand_all(
            self.container.command.as_deref().unwrap_or_default(),
            &resolved.env,
        );
        let args = env::expand_all(
            self.container.args.as_deref().unwrap_or_default(),
            &resolved.env,
        );
        let (program, args) = match command.split_first() {
            Some((first, rest)) => (
                image::program(&context.bin_dir, first),
                rest.iter().cloned().chain(args).collect(),
            ),
            None => (
                image::entrypoint(&context.bin_dir, self.container.image.as_deref())?,
                args,
            ),
        };
        // A container starts from its image's environment, not the node's:
        // only PATH (to find the host's tools) and the hostname a container
        // runtime sets, then the pod's own variables, which may override both.
        let mut process_env = Environment::default();
        process_env.set("PATH", context.host_path.to_string_lossy().into_owned());
        process_env.set("HOSTNAME", pod.name.to_owned());
        for (name, value) in resolved.env.iter() {
            process_env.set(name, value.to_owned());
        }
        Ok(LaunchSpec {
            pod: pod.name.to_owned(),
            ip: pod.ip,
            program,
            args,
            env: process_env,
            working_dir: self
                .container
                .working_dir
                .clone()
                .filter(|d| !d.is_empty())
                .map_or_else(|| PathBuf::from("/"), PathBuf::from),
            log_path: context.log_dir.join(format!("{}.log", pod.name)),
            readiness: self.readiness.clone(),
            liveness: self.liveness.clone(),
            grace: self.grace,
            skipped_keys: resolved.skipped_keys,
        })
    }
}

/// Who a pod is, for the downward API.
#[derive(Debug, Clone, Copy)]
pub struct PodName<'a> {
    pub name: &'a str,
    pub uid: &'a str,
    pub ip: Ipv4Addr,
}

/// What every launch on this node shares.
#[derive(Debug, Clone)]
pub struct LaunchContext {
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    pub namespace: String,
    pub allocatable: Allocatable,
    pub host_path: OsString,
}

/// One run of a pod's container, fully resolved.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub pod: String,
    pub ip: Ipv4Addr,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole process environment (Debug shows names only).
    pub env: Environment,
    pub working_dir: PathBuf,
    pub log_path: PathBuf,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub grace: Duration,
    pub skipped_keys: Vec<String>,
}

/// Why a pod cannot start now; retried on the next loop. The text is the
/// kubelet's reason and a message that names objects, never values.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("CreateContainerConfigError: {0}")]
    Config(#[from] EnvError),
    #[error("ErrImagePull: {0}")]
    Image(#[from] ImageError),
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EnvVar, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::env::Objects;

    fn template(annotation: &str, container: Container) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_owned(), "queue".to_owned())])),
                annotations: Some(BTreeMap::from([(
                    "urr.dev/config-hash".to_owned(),
                    annotation.to_owned(),
                )])),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                ..PodSpec::default()
            }),
        }
    }

    fn queue_container() -> Container {
        Container {
            name: "queue".to_owned(),
            image: Some("ghcr.io/urr-dev/urr-queue:0.1.0".to_owned()),
            // The operator's two ports: the public API and the internal one.
            ports: Some(vec![
                ContainerPort {
                    name: Some("http".to_owned()),
                    container_port: 8080,
                    ..ContainerPort::default()
                },
                ContainerPort {
                    name: Some("internal".to_owned()),
                    container_port: 9090,
                    ..ContainerPort::default()
                },
            ]),
            env: Some(vec![
                EnvVar {
                    name: "URR_LISTEN".to_owned(),
                    value: Some("0.0.0.0:8080".to_owned()),
                    ..EnvVar::default()
                },
                EnvVar {
                    name: "URR_INTERNAL_LISTEN".to_owned(),
                    value: Some("0.0.0.0:9090".to_owned()),
                    ..EnvVar::default()
                },
                EnvVar {
                    name: "OTHER".to_owned(),
                    value: Some("0.0.0.0:9999".to_owned()),
                    ..EnvVar::default()
                },
            ]),
            args: Some(vec!["--listen=$(URR_LISTEN)".to_owned()]),
            ..Container::default()
        }
    }

    #[test]
    fn the_hash_changes_with_an_annotation() {
        let a = template_hash(&template("one", queue_container())).expect("hash");
        let b = template_hash(&template("two", queue_container())).expect("hash");
        assert_eq!(a.len(), 10);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(
            a,
            template_hash(&template("one", queue_container())).expect("hash"),
            "stable"
        );
    }

    #[test]
    fn one_container_per_pod() {
        let mut spec = template("x", queue_container());
        if let Some(pod) = spec.spec.as_mut() {
            pod.containers.push(queue_container());
        }
        assert!(matches!(
            Template::from_spec(&spec),
            Err(TemplateError::ManyContainers(2))
        ));
    }

    #[test]
    fn launch_resolves_the_image_env_and_listen_address() {
        let dir = crate::testing::scratch_dir("template");
        let binary = crate::testing::executable(&dir, "urr-queue");
        let template = Template::from_spec(&template("x", queue_container())).expect("valid");
        let context = LaunchContext {
            bin_dir: dir.clone(),
            log_dir: dir.join("pods"),
            namespace: "urr-demo".to_owned(),
            allocatable: Allocatable::default(),
            host_path: OsString::from("/usr/bin:/bin"),
        };
        let pod = PodName {
            name: "demo-queue-abc-0",
            uid: "uid",
            ip: Ipv4Addr::new(127, 0, 1, 5),
        };
        let spec = template
            .launch(&pod, &context, &Objects::default())
            .expect("launches");
        assert_eq!(spec.program, binary);
        assert_eq!(spec.args, ["--listen=127.0.1.5:8080"]);
        assert_eq!(spec.env.get("URR_LISTEN"), Some("127.0.1.5:8080"));
        assert_eq!(
            spec.env.get("URR_INTERNAL_LISTEN"),
            Some("127.0.1.5:9090"),
            "every declared port, so replicas do not fight over the internal one"
        );
        assert_eq!(
            spec.env.get("OTHER"),
            Some("0.0.0.0:9999"),
            "undeclared port"
        );
        assert_eq!(spec.env.get("HOSTNAME"), Some("demo-queue-abc-0"));
        assert_eq!(spec.env.get("PATH"), Some("/usr/bin:/bin"));
        assert_eq!(spec.env.len(), 5, "nothing from the node's environment");
        assert_eq!(spec.log_path, dir.join("pods/demo-queue-abc-0.log"));

        let context = LaunchContext {
            bin_dir: dir.join("absent"),
            ..context
        };
        let error = template
            .launch(&pod, &context, &Objects::default())
            .expect_err("no binary");
        let message = error.to_string();
        assert!(
            message.starts_with("ErrImagePull: image \"ghcr.io/urr-dev/urr-queue:0.1.0\"")
                && message.contains("absent/urr-queue"),
            "{message}"
        );
    }
}
