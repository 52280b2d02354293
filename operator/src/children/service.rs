//! The Service of one service: ClusterIP, the public port `http` (80) first
//! and the internal one beside it.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{HTTP_PORT_NAME, INTERNAL_PORT, INTERNAL_PORT_NAME, ServiceKind, selector};

/// The Service in front of `service`'s pods, with `meta` as its metadata.
pub(super) fn build(meta: ObjectMeta, event_name: &str, service: ServiceKind) -> Service {
    Service {
        metadata: meta,
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
    }
}
