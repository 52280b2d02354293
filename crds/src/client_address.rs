//! Where the services read a buyer's address from: the per-address limits
//! (tier-1 numbers, tier-2 joins) key on it, so behind a proxy it must be
//! the buyer's, not the proxy's, and not one the buyer wrote.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec.clientAddress` of an Event; the operator's default (its
/// `--client-address-source`, set by the chart for its documented ingress)
/// when absent.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAddress {
    pub source: ClientAddressSource,
    /// `XForwardedFor` only: how many proxies of yours append to the header
    /// (1: one ingress such as ingress-nginx; 2: CloudFront, then a load
    /// balancer). The address is taken this far from the right, because the
    /// entries before are whatever the client wrote.
    #[serde(default = "one_hop")]
    #[schemars(range(min = 1, max = 16))]
    pub trusted_hops: u8,
}

fn one_hop() -> u8 {
    1
}

impl Default for ClientAddress {
    fn default() -> Self {
        Self {
            source: ClientAddressSource::Peer,
            trusted_hops: one_hop(),
        }
    }
}

/// Where the address comes from.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, clap::ValueEnum,
)]
pub enum ClientAddressSource {
    /// The connection's peer: no proxy in front.
    Peer,
    /// `X-Forwarded-For`, `trustedHops` from the right.
    XForwardedFor,
    /// `CloudFront-Viewer-Address`: behind CloudFront, with the origin
    /// locked to it (`spec.auth.originSecretRef`), else anyone may write it.
    #[value(name = "cloudfront-viewer-address")]
    CloudFrontViewerAddress,
}

impl ClientAddress {
    /// The queue service's `URR_CLIENT_IP_HEADER` and `URR_TRUSTED_PROXY_HOPS`.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        let header = match self.source {
            ClientAddressSource::Peer => return Vec::new(),
            ClientAddressSource::XForwardedFor => "X-Forwarded-For",
            ClientAddressSource::CloudFrontViewerAddress => "CloudFront-Viewer-Address",
        };
        vec![
            ("URR_CLIENT_IP_HEADER", header.to_owned()),
            ("URR_TRUSTED_PROXY_HOPS", self.trusted_hops.to_string()),
        ]
    }
}
