//! Services as kube-proxy and the endpoints controller see them: which pods
//! a Service selects, which of their ports each ServicePort targets, and so
//! the virtual servers HAProxy must run.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use k8s_openapi::api::core::v1::{ContainerPort, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A pod as a Service sees it.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub pod: &'a str,
    pub ip: Ipv4Addr,
    pub ready: bool,
    pub labels: &'a BTreeMap<String, String>,
    pub ports: &'a [ContainerPort],
}

/// One backend server: a ready pod's target port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Server {
    pub pod: String,
    pub addr: SocketAddrV4,
}

/// One ServicePort: a frontend on the cluster IP and its backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    pub service: String,
    pub port_name: Option<String>,
    pub bind: SocketAddrV4,
    pub servers: Vec<Server>,
}

/// A Service's virtual servers, and the ports that cannot be served here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServicePlan {
    pub ports: Vec<VirtualServer>,
    pub skipped: Vec<String>,
}

/// Whether a Service's selector selects a pod with `labels`. A Service
/// without a selector (or with an empty one) selects nothing: its endpoints
/// are someone else's to manage.
pub fn selects(
    selector: Option<&BTreeMap<String, String>>,
    labels: &BTreeMap<String, String>,
) -> bool {
    match selector {
        Some(selector) if !selector.is_empty() => selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value)),
        _ => false,
    }
}

/// The pod port a ServicePort sends to: `targetPort` as a number, or as
/// the name of one of the pod's TCP containerPorts; unset, the Service port
/// itself. `None` when the pod has no such named port, which leaves the pod
/// out of this port's endpoints, as in Kubernetes.
pub fn target_port(service_port: &ServicePort, container_ports: &[ContainerPort]) -> Option<u16> {
    let number = match &service_port.target_port {
        None => service_port.port,
        Some(IntOrString::Int(0)) => service_port.port,
        Some(IntOrString::Int(number)) => *number,
        Some(IntOrString::String(name)) => {
            container_ports
                .iter()
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == "TCP"
                })?
                .container_port
        }
    };
    u16::try_from(number).ok().filter(|p| *p != 0)
}

/// The virtual servers of the Service `name` at `cluster_ip`: one per TCP
/// ServicePort, with a server for every ready selected endpoint.
pub fn plan(
    name: &str,
    cluster_ip: Ipv4Addr,
    spec: Option<&ServiceSpec>,
    endpoints: &[Endpoint<'_>],
) -> ServicePlan {
    let mut plan = ServicePlan::default();
    let Some(spec) = spec else {
        return plan;
    };
    let selected: Vec<&Endpoint<'_>> = endpoints
        .iter()
        .filter(|e| e.ready && selects(spec.selector.as_ref(), e.labels))
        .collect();
    for service_port in spec.ports.iter().flatten() {
        let label = service_port
            .name
            .clone()
            .unwrap_or_else(|| service_port.port.to_string());
        let protocol = service_port.protocol.as_deref().unwrap_or("TCP");
        if protocol != "TCP" {
            plan.skipped.push(format!(
                "port {label}: {protocol} is not proxied (TCP only)"
            ));
            continue;
        }
        let Some(port) = u16::try_from(service_port.port).ok().filter(|p| *p != 0) else {
            plan.skipped.push(format!(
                "port {label}: {} is not a port number",
                service_port.port
            ));
            continue;
        };
        let mut servers: Vec<Server> = selected
            .iter()
            .filter_map(|e| {
                target_port(service_port, e.ports).map(|target| Server {
                    pod: e.pod.to_owned(),
                    addr: SocketAddrV4::new(e.ip, target),
                })
            })
            .collect();
        servers.sort();
        plan.ports.push(VirtualServer {
            service: name.to_owned(),
            port_name: service_port.name.clone(),
            bind: SocketAddrV4::new(cluster_ip, port),
            servers,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn http_port(port: i32) -> Vec<ContainerPort> {
        vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: port,
            ..ContainerPort::default()
        }]
    }

    #[test]
    fn selectors_need_every_label() {
        let pod = labels(&[("app", "queue"), ("event", "demo"), ("extra", "x")]);
        assert!(selects(Some(&labels(&[("app", "queue")])), &pod));
        assert!(selects(
            Some(&labels(&[("app", "queue"), ("event", "demo")])),
            &pod
        ));
        assert!(!selects(
            Some(&labels(&[("app", "queue"), ("event", "other")])),
            &pod
        ));
        assert!(!selects(Some(&labels(&[("missing", "x")])), &pod));
        assert!(!selects(Some(&labels(&[])), &pod), "empty selects nothing");
        assert!(!selects(None, &pod));
    }

    #[test]
    fn target_ports_by_number_name_or_default() {
        let ports = http_port(8080);
        let port = |target: Option<IntOrString>| ServicePort {
            port: 80,
            target_port: target,
            ..ServicePort::default()
        };
        assert_eq!(target_port(&port(None), &ports), Some(80));
        assert_eq!(
            target_port(&port(Some(IntOrString::Int(9000))), &ports),
            Some(9000)
        );
        assert_eq!(
            target_port(&port(Some(IntOrString::String("http".to_owned()))), &ports),
            Some(8080)
        );
        assert_eq!(
            target_port(&port(Some(IntOrString::String("grpc".to_owned()))), &ports),
            None
        );
    }

    #[test]
    fn plans_only_ready_selected_pods_with_the_named_port() {
        let queue = labels(&[("app", "queue"), ("event", "demo")]);
        let ticket = labels(&[("app", "ticket"), ("event", "demo")]);
        let with_port = http_port(8080);
        let without_port: Vec<ContainerPort> = vec![];
        let endpoints = [
            Endpoint {
                pod: "queue-b",
                ip: Ipv4Addr::new(127, 0, 1, 2),
                ready: true,
                labels: &queue,
                ports: &with_port,
            },
            Endpoint {
                pod: "queue-a",
                ip: Ipv4Addr::new(127, 0, 1, 1),
                ready: true,
                labels: &queue,
                ports: &with_port,
            },
            Endpoint {
                pod: "queue-unready",
                ip: Ipv4Addr::new(127, 0, 1, 3),
                ready: false,
                labels: &queue,
                ports: &with_port,
            },
            Endpoint {
                pod: "queue-no-port",
                ip: Ipv4Addr::new(127, 0, 1, 4),
                ready: true,
                labels: &queue,
                ports: &without_port,
            },
            Endpoint {
                pod: "ticket-a",
                ip: Ipv4Addr::new(127, 0, 1, 5),
                ready: true,
                labels: &ticket,
                ports: &with_port,
            },
        ];
        let spec = ServiceSpec {
            selector: Some(labels(&[("app", "queue")])),
            ports: Some(vec![
                ServicePort {
                    name: Some("http".to_owned()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".to_owned())),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some("dns".to_owned()),
                    port: 53,
                    protocol: Some("UDP".to_owned()),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        };
        let ip = Ipv4Addr::new(127, 0, 2, 1);
        let plan = plan("demo-queue", ip, Some(&spec), &endpoints);
        assert_eq!(
            plan.ports,
            vec![VirtualServer {
                service: "demo-queue".to_owned(),
                port_name: Some("http".to_owned()),
                bind: SocketAddrV4::new(ip, 80),
                servers: vec![
                    Server {
                        pod: "queue-a".to_owned(),
                        addr: SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, 1), 8080),
                    },
                    Server {
                        pod: "queue-b".to_owned(),
                        addr: SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, 2), 8080),
                    },
                ],
            }]
        );
        assert_eq!(plan.skipped, ["port dns: UDP is not proxied (TCP only)"]);
    }
}
