//! `spec.page`: the waiting page's branding. The template and its values
//! live in a ConfigMap (README "Branding the waiting page"), not in the
//! spec: a page is up to 64 KiB of HTML that designers edit and `kubectl
//! create configmap --from-file` takes as is, and a ConfigMap edit is seen
//! by the operator (it watches them) like a spec change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::DNS_SUBDOMAIN_PATTERN;

/// How the waiting page looks. Unset: the default page.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// A ConfigMap in the room's namespace with key `template.html` (the
    /// page, with `{{eventName}}`, `{{logoUrl}}`, `{{brandColor}}`,
    /// `{{accentColor}}`, `{{position}}`, `{{eta}}`) and optional keys
    /// `eventName`, `logoUrl`, `brandColor`, `accentColor`. The operator
    /// checks it (condition `PageTemplateValid`); until a good one is found
    /// the queue keeps serving the last good page, or the default one.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub template_config_map: String,
}
