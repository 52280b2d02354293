//! The ports of every service's children: the public `http` port and the
//! in-cluster `internal` one on the container and the Service, the probes on
//! `internal`, and the URLs the operator hands out pointing at the port that
//! serves their routes.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use urr_crds::Event;
use urr_operator::children::{Defaults, ServiceChildren, ServiceKind, build};

fn event() -> Event {
    let mut event: Event =
        serde_yaml::from_str(include_str!("../../examples/event.yaml")).expect("example event");
    event.metadata.namespace = Some("urr-demo".to_owned());
    event.metadata.uid = Some("3f0e2d1c-0000-4000-8000-000000000002".to_owned());
    event
}

fn children(service: ServiceKind) -> ServiceChildren {
    build(&event(), service, 2, &Defaults::default(), None).expect("build")
}

fn named(name: &str) -> Option<IntOrString> {
    Some(IntOrString::String(name.to_owned()))
}

#[test]
fn every_service_has_a_public_and_an_internal_port() {
    for service in ServiceKind::ALL {
        let children = children(service);
        let pod = children
            .deployment
            .spec
            .and_then(|d| d.template.spec)
            .expect("pod");
        let container = &pod.containers[0];
        let ports: Vec<(Option<&str>, i32)> = container
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            [(Some("http"), 8080), (Some("internal"), 9090)],
            "{service:?} container ports"
        );
        let service_ports: Vec<(Option<String>, i32, Option<IntOrString>)> = children
            .service
            .spec
            .and_then(|s| s.ports)
            .expect("service ports")
            .into_iter()
            .map(|p| (p.name, p.port, p.target_port))
            .collect();
        assert_eq!(
            service_ports,
            [
                (Some("http".to_owned()), 80, named("http")),
                (Some("internal".to_owned()), 9090, named("internal")),
            ],
            "{service:?} Service ports"
        );
        for (probe, path) in [
            (&container.readiness_probe, "/readyz"),
            (&container.liveness_probe, "/healthz"),
        ] {
            let get = probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .expect("HTTP probe");
            assert_eq!(get.path.as_deref(), Some(path));
            assert_eq!(
                Some(get.port.clone()),
                named("internal"),
                "{service:?} {path} on the internal port"
            );
        }
        let config = children.config_map.data.expect("data");
        assert_eq!(config["URR_LISTEN"], "0.0.0.0:8080");
        assert_eq!(
            config["URR_INTERNAL_LISTEN"], "0.0.0.0:9090",
            "explicit, so a local node can give each replica its own address"
        );
        assert_eq!(
            config["URR_TICKET_URL"], "http://aurora-seoul-2026-ticket:9090",
            "the payment service calls the ticket service's internal routes"
        );
    }
}
