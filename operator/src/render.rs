//! `urr-operator render`: the exact child objects the controller would apply
//! for the Events in some manifests, as YAML, with no cluster. Invalid Events
//! are refused with every violation, as the controller would report them. A
//! WaitingRoom among the manifests that names an Event wires its queue, as
//! the controller does with the rooms it watches.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use urr_crds::validation::{InvalidSpec, Validate};
use urr_crds::{Event, WaitingRoom};

use crate::children::{self, BuildError, Defaults, QueueRoom, ServiceKind};
use crate::scaling;

/// Placeholder uid of Events rendered offline (the API server assigns the real one).
pub const OFFLINE_UID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("document {index}: not valid YAML: {source}")]
    Yaml {
        index: usize,
        source: serde_yaml::Error,
    },
    #[error("{name}: not a valid Event: {source}")]
    NotAnEvent {
        name: String,
        source: serde_yaml::Error,
    },
    #[error("Event {name} is invalid:\n{violations}")]
    Invalid {
        name: String,
        violations: InvalidSpec,
    },
    #[error("Event {name}: {source}")]
    Build { name: String, source: BuildError },
    #[error("cannot write YAML: {0}")]
    Output(serde_yaml::Error),
}

/// Renders every Event in `yaml` (other kinds are skipped) at time `now`,
/// placing Events without a namespace in `default_namespace`.
pub fn render(
    yaml: &str,
    now: Timestamp,
    default_namespace: &str,
    defaults: &Defaults,
) -> Result<Vec<String>, RenderError> {
    let mut documents = Vec::new();
    let mut values = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        values.push(
            serde_yaml::Value::deserialize(document)
                .map_err(|source| RenderError::Yaml { index, source })?,
        );
    }
    let of_kind = |value: &serde_yaml::Value, kind: &str| {
        value.get("kind").and_then(|k| k.as_str()) == Some(kind)
            && value.get("apiVersion").and_then(|v| v.as_str()) == Some("urr.dev/v1alpha1")
    };
    // Rooms that do not parse are left to `crdgen check`; render only wires
    // the ones that do.
    let rooms: Vec<WaitingRoom> = values
        .iter()
        .filter(|value| of_kind(value, "WaitingRoom"))
        .filter_map(|value| serde_yaml::from_value::<WaitingRoom>(value.clone()).ok())
        .map(|mut room| {
            room.metadata
                .namespace
                .get_or_insert_with(|| default_namespace.to_owned());
            room
        })
        .collect();
    for value in values {
        if !of_kind(&value, "Event") {
            continue;
        }
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("<unnamed>")
            .to_owned();
        let mut event: Event =
            serde_yaml::from_value(value).map_err(|source| RenderError::NotAnEvent {
                name: name.clone(),
                source,
            })?;
        event
            .validate()
            .map_err(|violations| RenderError::Invalid {
                name: name.clone(),
                violations,
            })?;
        event
            .metadata
            .namespace
            .get_or_insert_with(|| default_namespace.to_owned());
        event
            .metadata
            .uid
            .get_or_insert_with(|| OFFLINE_UID.to_owned());
        let room = QueueRoom::find(&rooms, &event);
        for service in ServiceKind::ALL {
            let replicas =
                scaling::recommend(&event.spec, service, now, false, None, None).replicas;
            let built = children::build(&event, service, replicas, defaults, room.as_ref())
                .map_err(|source| RenderError::Build {
                    name: name.clone(),
                    source,
                })?;
            documents.push(serde_yaml::to_string(&built.config_map).map_err(RenderError::Output)?);
            documents.push(serde_yaml::to_string(&built.deployment).map_err(RenderError::Output)?);
            documents.push(serde_yaml::to_string(&built.service).map_err(RenderError::Output)?);
            documents.push(
                serde_yaml::to_string(&built.pod_disruption_budget).map_err(RenderError::Output)?,
            );
        }
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-12T10:00:00Z".parse().expect("time")
    }

    #[test]
    fn the_example_renders_four_objects_per_service_with_apiversion_and_kind() {
        let docs = render(
            include_str!("../../examples/event.yaml"),
            now(),
            "urr-demo",
            &Defaults::default(),
        )
        .expect("render");
        assert_eq!(docs.len(), 12);
        let kinds: Vec<String> = docs
            .iter()
            .map(|d| {
                let value: serde_yaml::Value = serde_yaml::from_str(d).expect("yaml");
                format!(
                    "{}/{}",
                    value["apiVersion"].as_str().unwrap_or("?"),
                    value["kind"].as_str().unwrap_or("?")
                )
            })
            .collect();
        assert_eq!(
            &kinds[..4],
            [
                "v1/ConfigMap",
                "apps/v1/Deployment",
                "v1/Service",
                "policy/v1/PodDisruptionBudget"
            ]
        );
        // 10:00Z is an hour before the 11:00Z opening, before every pre-warm (30 min at most): min replicas.
        assert!(docs[1].contains("replicas: 2"), "{}", docs[1]);
    }

    #[test]
    fn an_invalid_event_is_refused_with_its_violations() {
        let yaml = include_str!("../../examples/invalid/event-replicas.yaml");
        let error = render(yaml, now(), "default", &Defaults::default()).expect_err("invalid");
        let text = error.to_string();
        assert!(
            text.contains(
                "spec.services.ticket.replicas: replicas.min must not exceed replicas.max"
            ),
            "{text}"
        );
        assert!(text.contains("spec.services.queue.prewarm"), "{text}");
    }

    #[test]
    fn other_kinds_are_skipped_and_broken_yaml_is_an_error() {
        let docs = render(
            include_str!("../../examples/waitingroom.yaml"),
            now(),
            "default",
            &Defaults::default(),
        )
        .expect("render");
        assert!(docs.is_empty());
        assert!(matches!(
            render("a: [", now(), "default", &Defaults::default()),
            Err(RenderError::Yaml { .. })
        ));
    }
}
