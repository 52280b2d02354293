//! A container's environment, resolved as the kubelet resolves it: `envFrom`
//! sources first, then `env` entries in order, `$(VAR)` references in values
//! expanded against the variables defined before them.
//!
//! Pure over [`ObjectSource`], so it needs no API server: the node fetches
//! the ConfigMaps and Secrets a template names and hands them in as
//! [`Objects`]. Errors name ConfigMaps, Secrets and keys, never a value, so
//! they can be logged and written to the status file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    Container, EnvVarSource, ObjectFieldSelector, ResourceFieldSelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KubeQuantity;

use crate::quantity::{Quantity, QuantityError, ceil_div};

/// Where the ConfigMaps and Secrets a container refers to come from.
/// `None` means the object does not exist.
pub trait ObjectSource {
    fn config_map(&self, name: &str) -> Option<&BTreeMap<String, String>>;
    fn secret(&self, name: &str) -> Option<&BTreeMap<String, Vec<u8>>>;
}

/// ConfigMaps and Secrets fetched ahead of resolution.
#[derive(Clone, Default)]
pub struct Objects {
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Objects {
    pub fn insert_config_map(&mut self, name: &str, data: BTreeMap<String, String>) {
        self.config_maps.insert(name.to_owned(), data);
    }

    pub fn insert_secret(&mut self, name: &str, data: BTreeMap<String, Vec<u8>>) {
        self.secrets.insert(name.to_owned(), data);
    }
}

/// Names and keys only: this value holds secrets.
impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |map: &BTreeMap<String, Vec<u8>>| map.keys().cloned().collect::<Vec<_>>();
        f.debug_struct("Objects")
            .field("config_maps", &self.config_maps.keys().collect::<Vec<_>>())
            .field(
                "secrets",
                &self
                    .secrets
                    .iter()
                    .map(|(name, data)| (name, keys(data)))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ObjectSource for Objects {
    fn config_map(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.config_maps.get(name)
    }

    fn secret(&self, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        self.secrets.get(name)
    }
}

/// The ConfigMaps and Secrets a container reads, so the node fetches only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

impl References {
    pub fn of(container: &Container) -> Self {
        let mut refs = Self::default();
        for source in container.env_from.iter().flatten() {
            if let Some(r) = &source.config_map_ref {
                refs.config_maps.insert(r.name.clone());
            }
            if let Some(r) = &source.secret_ref {
                refs.secrets.insert(r.name.clone());
            }
        }
        for var in container.env.iter().flatten() {
            let Some(source) = &var.value_from else {
                continue;
            };
            if let Some(r) = &source.config_map_key_ref {
                refs.config_maps.insert(r.name.clone());
            }
            if let Some(r) = &source.secret_key_ref {
                refs.secrets.insert(r.name.clone());
            }
        }
        refs
    }

    pub fn is_empty(&self) -> bool {
        self.config_maps.is_empty() && self.secrets.is_empty()
    }
}

/// What `fieldRef` can read about the pod.
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub node_name: &'a str,
    pub service_account: &'a str,
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
}

/// The node's allocatable resources: the kubelet fills unset limits with them
/// before the downward API reads `limits.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu: Quantity,
    pub memory: Quantity,
}

impl Default for Allocatable {
    /// The development machines: 2 cores, 24 GiB.
    fn default() -> Self {
        Self {
            cpu: Quantity::units(2),
            memory: Quantity::units(24 << 30),
        }
    }
}

/// Ordered variables; a redefinition replaces the value in place, as a later
/// entry overrides an earlier one in a pod.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Vec<(String, String)>,
}

impl Environment {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: String) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.vars.push((name.to_owned(), value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.vars.iter_mut().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

/// Names only: values may come from Secrets.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.vars.iter().map(|(n, _)| n))
            .finish()
    }
}

/// The resolved environment, with the `envFrom` keys that were skipped
/// because no process environment can carry them.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub env: Environment,
    pub skipped_keys: Vec<String>,
}

/// Why a container's environment cannot be built: the kubelet's
/// `CreateContainerConfigError`. Names and keys only, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("configmap {name:?} not found")]
    ConfigMapNotFound { name: String },
    #[error("configmap {name:?} key {key:?} not found")]
    ConfigMapKeyNotFound { name: String, key: String },
    #[error("secret {name:?} not found")]
    SecretNotFound { name: String },
    #[error("secret {name:?} key {key:?} not found")]
    SecretKeyNotFound { name: String, key: String },
    #[error(
        "secret {name:?} key {key:?} is not UTF-8 text (this node passes environments as text)"
    )]
    SecretNotText { name: String, key: String },
    #[error("env var {var:?}: valueFrom names no source")]
    NoSource { var: String },
    #[error("env var {var:?}: fieldPath {path:?} is not supported")]
    FieldPath { var: String, path: String },
    #[error(
        "env var {var:?}: resource {resource:?} is not supported (limits and requests of cpu and memory are)"
    )]
    Resource { var: String, resource: String },
    #[error("env var {var:?}: resourceFieldRef names container {named:?}, not {container:?}")]
    OtherContainer {
        var: String,
        named: String,
        container: String,
    },
    #[error("env var {var:?}: {source}")]
    Quantity {
        var: String,
        #[source]
        source: QuantityError,
    },
    #[error("env var {var:?}: the divisor is zero")]
    ZeroDivisor { var: String },
}

/// Resolves the environment of `container` in the pod `pod`.
pub fn resolve(
    container: &Container,
    pod: &PodFacts<'_>,
    allocatable: &Allocatable,
    objects: &dyn ObjectSource,
) -> Result<Resolved, EnvError> {
    let mut resolved = Resolved::default();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        let add = |key: &str, value: String, resolved: &mut Resolved| {
            let name = format!("{prefix}{key}");
            if is_env_name(&name) {
                resolved.env.set(&name, value);
            } else {
                resolved.skipped_keys.push(name);
            }
        };
        if let Some(reference) = &source.config_map_ref {
            match objects.config_map(&reference.name) {
                Some(data) => {
                    for (key, value) in data {
                        add(key, value.clone(), &mut resolved);
                    }
                }
                None if reference.optional == Some(true) => {}
                None => {
                    return Err(EnvError::ConfigMapNotFound {
                        name: reference.name.clone(),
                    });
                }
            }
        }
        if let Some(reference) = &source.secret_ref {
            match objects.secret(&reference.name) {
                Some(data) => {
                    for (key, value) in data {
                        let text = secret_text(&reference.name, key, value)?;
                        add(key, text, &mut resolved);
                    }
                }
                None if reference.optional == Some(true) => {}
                None => {
                    return Err(EnvError::SecretNotFound {
                        name: reference.name.clone(),
                    });
                }
            }
        }
    }
    for var in container.env.iter().flatten() {
        // The kubelet's order of precedence: a non-empty value wins over
        // valueFrom (validation forbids both, but that is the order it reads).
        let value = match (var.value.as_deref(), &var.value_from) {
            (Some(value), _) if !value.is_empty() => {
                let env = &resolved.env;
                expand(value, |name| env.get(name))
            }
            (_, Some(source)) => {
                match value_from(&var.name, source, container, pod, allocatable, objects)? {
                    Some(value) => value,
                    // An optional reference to something missing leaves the
                    // variable undefined, not empty.
                    None => continue,
                }
            }
            _ => String::new(),
        };
        resolved.env.set(&var.name, value);
    }
    Ok(resolved)
}

/// Expands `$(VAR)` in a container's command and args against its final
/// environment, as the kubelet does.
pub fn expand_all(items: &[String], env: &Environment) -> Vec<String> {
    items
        .iter()
        .map(|item| expand(item, |name| env.get(name)))
        .collect()
}

/// Kubernetes' `$(VAR)` expansion: `$$` is an escaped `$`; a reference to an
/// undefined variable, an unterminated `$(` and any other `$` stay as written.
pub fn expand<'v>(input: &str, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(position) = rest.find('$') {
        out.push_str(&rest[..position]);
        let after = &rest[position + 1..];
        match after.chars().next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after[1..].find(')') {
                Some(end) => {
                    let name = &after[1..1 + end];
                    match lookup(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(other) => {
                out.push('$');
                out.push(other);
                rest = &after[other.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Kubernetes' relaxed rule for variable names (printable ASCII without `=`),
/// which is also what a process environment can carry.
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

fn secret_text(name: &str, key: &str, value: &[u8]) -> Result<String, EnvError> {
    String::from_utf8(value.to_vec()).map_err(|_| EnvError::SecretNotText {
        name: name.to_owned(),
        key: key.to_owned(),
    })
}

fn value_from(
    var: &str,
    source: &EnvVarSource,
    container: &Container,
    pod: &PodFacts<'_>,
    allocatable: &Allocatable,
    objects: &dyn ObjectSource,
) -> Result<Option<String>, EnvError> {
    if let Some(field) = &source.field_ref {
        return field_value(var, field, pod).map(Some);
    }
    if let Some(field) = &source.resource_field_ref {
        return resource_value(var, field, container, allocatable).map(Some);
    }
    if let Some(selector) = &source.config_map_key_ref {
        let optional = selector.optional == Some(true);
        let Some(data) = objects.config_map(&selector.name) else {
            return if optional {
                Ok(None)
            } else {
                Err(EnvError::ConfigMapNotFound {
                    name: selector.name.clone(),
                })
            };
        };
        return match data.get(&selector.key) {
            Some(value) => Ok(Some(value.clone())),
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMapKeyNotFound {
                name: selector.name.clone(),
                key: selector.key.clone(),
            }),
        };
    }
    if let Some(selector) = &source.secret_key_ref {
        let optional = selector.optional == Some(true);
        let Some(data) = objects.secret(&selector.name) else {
            return if optional {
                Ok(None)
            } else {
                Err(EnvError::SecretNotFound {
                    name: selector.name.clone(),
                })
            };
        };
        return match data.get(&selector.key) {
            Some(value) => secret_text(&selector.name, &selector.key, value).map(Some),
            None if optional => Ok(None),
            None => Err(EnvError::SecretKeyNotFound {
                name: selector.name.clone(),
                key: selector.key.clone(),
            }),
        };
    }
    Err(EnvError::NoSource {
        var: var.to_owned(),
    })
}

/// The downward API fields an environment variable may read.
fn field_value(
    var: &str,
    field: &ObjectFieldSelector,
    pod: &PodFacts<'_>,
) -> Result<String, EnvError> {
    let path = field.field_path.as_str();
    let value = match path {
        "metadata.name" => pod.name.to_owned(),
        "metadata.namespace" => pod.namespace.to_owned(),
        "metadata.uid" => pod.uid.to_owned(),
        "spec.nodeName" => pod.node_name.to_owned(),
        "spec.serviceAccountName" => pod.service_account.to_owned(),
        "status.podIP" | "status.podIPs" => pod.pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => pod.host_ip.to_string(),
        _ => {
            let subscripted = |map: &str| {
                path.strip_prefix(map)
                    .and_then(|rest| rest.strip_prefix("['"))
                    .and_then(|rest| rest.strip_suffix("']"))
            };
            // A missing label or annotation reads as empty, as in Kubernetes.
            if let Some(key) = subscripted("metadata.labels") {
                pod.labels.get(key).cloned().unwrap_or_default()
            } else if let Some(key) = subscripted("metadata.annotations") {
                pod.annotations.get(key).cloned().unwrap_or_default()
            } else {
                return Err(EnvError::FieldPath {
                    var: var.to_owned(),
                    path: path.to_owned(),
                });
            }
        }
    };
    Ok(value)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resource {
    Cpu,
    Memory,
}

/// `resourceFieldRef`: the kubelet's `ExtractContainerResourceValue` after
/// its defaulting: unset limits are the node's allocatable, unset requests
/// are the limits (the API server's pod defaulting) or zero.
fn resource_value(
    var: &str,
    field: &ResourceFieldSelector,
    container: &Container,
    allocatable: &Allocatable,
) -> Result<String, EnvError> {
    if let Some(named) = field.container_name.as_deref().filter(|n| !n.is_empty())
        && named != container.name
    {
        return Err(EnvError::OtherContainer {
            var: var.to_owned(),
            named: named.to_owned(),
            container: container.name.clone(),
        });
    }
    let unsupported = || EnvError::Resource {
        var: var.to_owned(),
        resource: field.resource.clone(),
    };
    let (kind, name) = field.resource.split_once('.').ok_or_else(unsupported)?;
    let resource = match name {
        "cpu" => Resource::Cpu,
        "memory" => Resource::Memory,
        _ => return Err(unsupported()),
    };
    let parse = |quantity: &KubeQuantity| {
        Quantity::parse(&quantity.0).map_err(|source| EnvError::Quantity {
            var: var.to_owned(),
            source,
        })
    };
    let resources = container.resources.as_ref();
    let limit = resources
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get(name))
        .map(parse)
        .transpose()?;
    let request = resources
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get(name))
        .map(parse)
        .transpose()?;
    let value = match kind {
        "limits" => limit.unwrap_or(match resource {
            Resource::Cpu => allocatable.cpu,
            Resource::Memory => allocatable.memory,
        }),
        "requests" => request.or(limit).unwrap_or(Quantity::units(0)),
        _ => return Err(unsupported()),
    };
    let divisor = field
        .divisor
        .as_ref()
        .map(parse)
        .transpose()?
        .unwrap_or(Quantity::units(1));
    // CPU in millicores, memory in bytes, each rounded up, as Kubernetes does.
    let (value, divisor) = match resource {
        Resource::Cpu => (value.milli_value(), divisor.milli_value()),
        Resource::Memory => (value.value(), divisor.value()),
    };
    if divisor == 0 {
        return Err(EnvError::ZeroDivisor {
            var: var.to_owned(),
        });
    }
    Ok(ceil_div(value, divisor).to_string())
}

#[cfg(test)]
mod tests;
