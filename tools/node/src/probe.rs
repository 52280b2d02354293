//! Readiness and liveness probes: what the kubelet's prober does, aimed at
//! the pod IP instead of a pod network namespace.

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerPort, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use reqwest::header::{HeaderName, HeaderValue};

use crate::env::Environment;

/// Applied when a probe sets no `timeoutSeconds`: longer than the kubelet's
/// 1 s, because a 2-core machine starting several services at once is slow.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    Http {
        https: bool,
        path: String,
        port: u16,
        headers: Vec<(String, String)>,
    },
    Tcp {
        port: u16,
    },
    Exec {
        command: Vec<String>,
    },
}

/// A probe with its Kubernetes defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// Why a probe in a template cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("the probe names no action")]
    NoAction,
    #[error("gRPC probes are not supported")]
    Grpc,
    #[error("the probe's port {0:?} is not a containerPort name")]
    UnknownPort(String),
    #[error("the probe's port {0} is not a TCP port number")]
    BadPort(i32),
    #[error("the exec probe has no command")]
    EmptyCommand,
}

/// Resolves a port given as a number or as a container port's name.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, ProbeError> {
    let number = match port {
        IntOrString::Int(number) => *number,
        IntOrString::String(name) => {
            // A numeric string is a number, as the kubelet reads it.
            if let Ok(number) = name.parse::<i32>() {
                number
            } else {
                ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name.as_str()))
                    .map(|p| p.container_port)
                    .ok_or_else(|| ProbeError::UnknownPort(name.clone()))?
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(ProbeError::BadPort(number))
}

fn seconds(value: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
}

fn count(value: Option<i32>, default: u32) -> u32 {
    value
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

impl ProbeSpec {
    pub fn from_probe(probe: &Probe, ports: &[ContainerPort]) -> Result<Self, ProbeError> {
        let action = if let Some(http) = &probe.http_get {
            ProbeAction::Http {
                https: http
                    .scheme
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("https")),
                path: http.path.clone().unwrap_or_else(|| "/".to_owned()),
                port: resolve_port(&http.port, ports)?,
                headers: http
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            ProbeAction::Tcp {
                port: resolve_port(&tcp.port, ports)?,
            }
        } else if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            if command.is_empty() {
                return Err(ProbeError::EmptyCommand);
            }
            ProbeAction::Exec { command }
        } else if probe.grpc.is_some() {
            return Err(ProbeError::Grpc);
        } else {
            return Err(ProbeError::NoAction);
        };
        Ok(Self {
            action,
            initial_delay: seconds(probe.initial_delay_seconds, 0),
            period: seconds(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: match probe.timeout_seconds {
                Some(t) if t > 0 => seconds(Some(t), 1),
                _ => DEFAULT_TIMEOUT,
            },
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
        })
    }
}

/// Why one probe attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("HTTP request failed: {0}")]
    Request(#[source] reqwest::Error),
    #[error("invalid probe header {0:?}")]
    Header(String),
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("could not run the probe command: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the probe command exited with {0}")]
    Exit(std::process::ExitStatus),
}

/// HTTP clients for probes: one that verifies nothing over HTTPS, as the
/// kubelet does not, and neither goes through a proxy from the host's
/// environment (pod IPs are loopback addresses).
#[derive(Debug, Clone)]
pub struct Prober {
    http: reqwest::Client,
}

impl Prober {
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            // Probes are independent requests, like the kubelet's.
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self { http })
    }

    /// Runs one probe against the pod at `ip`; `env` is the container's
    /// environment, which exec probes run with.
    pub async fn check(
        &self,
        probe: &ProbeSpec,
        ip: Ipv4Addr,
        env: &Environment,
    ) -> Result<(), ProbeFailure> {
        match &probe.action {
            ProbeAction::Http {
                https,
                path,
                port,
                headers,
            } => {
                let scheme = if *https { "https" } else { "http" };
                let path = if path.starts_with('/') {
                    path.clone()
                } else {
                    format!("/{path}")
                };
                let mut request = self
                    .http
                    .get(format!("{scheme}://{ip}:{port}{path}"))
                    .timeout(probe.timeout)
                    .header("User-Agent", "kube-probe/1.33 (urr-local-node)");
                for (name, value) in headers {
                    let name = HeaderName::try_from(name.as_str())
                        .map_err(|_| ProbeFailure::Header(name.clone()))?;
                    let value = HeaderValue::try_from(value.as_str())
                        .map_err(|_| ProbeFailure::Header(name.to_string()))?;
                    request = request.header(name, value);
                }
                let response = request.send().await.map_err(|e| {
                    if e.is_timeout() {
                        ProbeFailure::Timeout(probe.timeout)
                    } else {
                        ProbeFailure::Request(e)
                    }
                })?;
                let status = response.status().as_u16();
                // The kubelet's rule: 2xx and 3xx succeed.
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(ProbeFailure::Status(status))
                }
            }
            ProbeAction::Tcp { port } => {
                let connect = tokio::net::TcpStream::connect((ip, *port));
                match tokio::time::timeout(probe.timeout, connect).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(ProbeFailure::Connect(e)),
                    Err(_) => Err(ProbeFailure::Timeout(probe.timeout)),
                }
            }
            ProbeAction::Exec { command } => {
                let (program, args) = command.split_first().ok_or_else(|| {
                    ProbeFailure::Spawn(std::io::Error::other("empty probe command"))
                })?;
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args)
                    .env_clear()
                    .envs(env.iter())
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true);
                let mut child = cmd.spawn().map_err(ProbeFailure::Spawn)?;
                match tokio::time::timeout(probe.timeout, child.wait()).await {
                    Ok(Ok(status)) if status.success() => Ok(()),
                    Ok(Ok(status)) => Err(ProbeFailure::Exit(status)),
                    Ok(Err(e)) => Err(ProbeFailure::Spawn(e)),
                    Err(_) => Err(ProbeFailure::Timeout(probe.timeout)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{HTTPGetAction, TCPSocketAction};

    use super::*;

    fn ports() -> Vec<ContainerPort> {
        vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: 8080,
            ..ContainerPort::default()
        }]
    }

    #[test]
    fn probes_get_kubernetes_defaults_and_named_ports() {
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/readyz".to_owned()),
                port: IntOrString::String("http".to_owned()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            failure_threshold: Some(2),
            ..Probe::default()
        };
        let spec = ProbeSpec::from_probe(&probe, &ports()).expect("valid");
        assert_eq!(
            spec,
            ProbeSpec {
                action: ProbeAction::Http {
                    https: false,
                    path: "/readyz".to_owned(),
                    port: 8080,
                    headers: vec![],
                },
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(5),
                timeout: DEFAULT_TIMEOUT,
                success_threshold: 1,
                failure_threshold: 2,
            }
        );
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(9000),
                ..TCPSocketAction::default()
            }),
            ..Probe::default()
        };
        let spec = ProbeSpec::from_probe(&tcp, &ports()).expect("valid");
        assert_eq!(spec.action, ProbeAction::Tcp { port: 9000 });
        assert_eq!(spec.period, Duration::from_secs(10));
        assert_eq!(spec.failure_threshold, 3);

        let unknown = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("metrics".to_owned()),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        assert_eq!(
            ProbeSpec::from_probe(&unknown, &ports()),
            Err(ProbeError::UnknownPort("metrics".to_owned()))
        );
        assert_eq!(
            ProbeSpec::from_probe(&Probe::default(), &ports()),
            Err(ProbeError::NoAction)
        );
    }
}
