//! Small reference types shared by both kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validation::{Violations, check_pattern};

/// A DNS-1123 subdomain, the form of Kubernetes object names.
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A DNS-1123 label: section ids, which end up in Redis keys and metric labels.
pub const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A key inside a Secret (`data` keys allow dots, dashes and underscores).
pub const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

/// A key of a Secret in the same namespace as the resource that names it.
///
/// Secrets are always referenced, never inlined: a spec is stored in etcd and
/// in git (ArgoCD), so a value in it would leak.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub key: String,
}

impl SecretKeyRef {
    pub(crate) fn validate_into(&self, path: &str, out: &mut Violations) {
        check_name(&self.name, &format!("{path}.name"), out);
        out.check_len(&self.key, 1, 253, &format!("{path}.key"));
        check_pattern(&self.key, SECRET_KEY_PATTERN, &format!("{path}.key"), out);
    }
}

/// A reference to another object of a known kind in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// Checks a Kubernetes object name (length and DNS-1123 subdomain form).
pub(crate) fn check_name(name: &str, path: &str, out: &mut Violations) {
    out.check_len(name, 1, 253, path);
    check_pattern(name, DNS_SUBDOMAIN_PATTERN, path, out);
}
