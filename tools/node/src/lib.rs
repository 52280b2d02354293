//! A local stand-in for a Kubernetes node, for a machine without a
//! container engine: a real kube-apiserver runs on loopback (kwok fakes the
//! Pods there), the URR operator applies Deployments and Services, and this
//! crate plays the parts a cluster would:
//!
//! - **kubelet and container runtime**: each Deployment's pod template runs
//!   as local processes, resolved as the kubelet resolves it (command and
//!   args, `envFrom`, `env` with `$(VAR)` expansion, ConfigMap and Secret
//!   references, the downward API), with readiness and liveness probes,
//!   `restartPolicy: Always` with back-off, and rolling updates;
//! - **kube-proxy**: HAProxy listens on a local "cluster IP" per Service
//!   (127.0.2.N) and balances over the ready pods (127.0.1.N);
//! - **cluster DNS**: `<state-dir>/hosts` maps every Service name, short to
//!   fully qualified, to its address; bind-mounted over /etc/hosts in a
//!   private mount namespace, the pods (and the node) resolve them.
//!
//! The one deliberate difference: pods share the host's network, so an
//! environment value that is exactly `0.0.0.0:<p>` or `[::]:<p>`, for a
//! declared containerPort `p`, becomes `<podIP>:<p>`: each replica binds
//! its own address, as it would in its own network namespace.
//!
//! Not modelled: multiple containers per pod, init containers, volumes,
//! lifecycle hooks, startup and gRPC probes, security contexts (processes
//! run as the node's user), resource limits (read by the downward API only).

pub mod cli;
pub mod env;
pub mod haproxy;
pub mod image;
pub mod kill;
pub mod network;
pub mod node;
pub mod pods;
pub mod probe;
pub mod process;
pub mod quantity;
pub mod rollout;
pub mod services;
pub mod status;
pub mod template;

pub use cli::Args;
pub use node::{StartupError, run};

/// Text logs on stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
pub(crate) mod testing {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh directory under the system temp dir, unique per test and run.
    pub fn scratch_dir(name: &str) -> PathBuf {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "urr-local-node-test-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    /// An executable shell script `name` in `dir`.
    pub fn executable(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
}
