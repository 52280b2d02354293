//! Command line and environment.

use std::path::PathBuf;

/// Runs the Deployments of one namespace as local processes, behind HAProxy,
/// with a hosts file for cluster DNS.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "urr-local-node", version, about)]
pub struct Args {
    /// Namespace whose Deployments and Services this node serves.
    #[arg(long, env = "URR_NODE_NAMESPACE")]
    pub namespace: String,

    /// Directory with the image binaries (urr-queue, urr-ticket, urr-payment):
    /// image `.../urr-queue:tag` runs `<bin-dir>/urr-queue`.
    #[arg(long, env = "URR_NODE_BIN_DIR")]
    pub bin_dir: PathBuf,

    /// Directory for the hosts file, haproxy.cfg, status.json and pod logs.
    #[arg(long, env = "URR_NODE_STATE_DIR")]
    pub state_dir: PathBuf,

    /// At most this many pods per Deployment, whatever spec.replicas says
    /// (the operator scales for a cluster; this is one small machine).
    #[arg(long, env = "URR_NODE_MAX_REPLICAS", default_value_t = 2)]
    pub max_replicas: u32,

    /// Label selector for the Deployments to run (empty: all in the namespace).
    #[arg(
        long,
        env = "URR_NODE_SELECTOR",
        default_value = "app.kubernetes.io/managed-by=urr-operator"
    )]
    pub selector: String,

    /// HAProxy binary.
    #[arg(long, env = "URR_NODE_HAPROXY", default_value = "haproxy")]
    pub haproxy: String,

    /// Cluster domain: Services are `<name>.<ns>.svc.<domain>`. Given as
    /// `cluster.local` (the kubelet's flag) or `svc.cluster.local`; both mean
    /// the same names.
    #[arg(
        long,
        env = "URR_NODE_CLUSTER_DOMAIN",
        default_value = "svc.cluster.local"
    )]
    pub cluster_domain: String,

    /// Milliseconds between two reconcile loops.
    #[arg(long, env = "URR_NODE_INTERVAL_MS", default_value_t = 1000)]
    pub interval_ms: u64,
}

impl Args {
    /// The domain after `.svc.`, whichever way it was given.
    pub fn cluster_domain(&self) -> &str {
        let domain = self.cluster_domain.trim_matches('.');
        domain.strip_prefix("svc.").unwrap_or(domain)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults_and_domain_forms() {
        let args = Args::try_parse_from([
            "urr-local-node",
            "--namespace",
            "urr-demo",
            "--bin-dir",
            "/bin",
            "--state-dir",
            "/tmp/s",
        ])
        .expect("parses");
        assert_eq!(args.max_replicas, 2);
        assert_eq!(args.interval_ms, 1000);
        assert_eq!(args.selector, "app.kubernetes.io/managed-by=urr-operator");
        assert_eq!(args.cluster_domain(), "cluster.local");
        let args = Args {
            cluster_domain: "cluster.local".to_owned(),
            ..args
        };
        assert_eq!(args.cluster_domain(), "cluster.local");
    }
}
