//! HAProxy as kube-proxy: one frontend on each Service's cluster address and
//! port, balancing over the ready endpoints. Config rendering is pure; the
//! process runs once in master-worker mode and reloads on SIGUSR2, so a
//! change of endpoints never drops the connections already open.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Child;

use crate::kill::{self, KillError, Signal};
use crate::services::VirtualServer;

/// The connection limit asked for.
pub const MAXCONN: u32 = 50_000;
/// File descriptors kept back from `maxconn`'s share (listeners, logs,
/// the master's sockets).
const FD_RESERVE: u64 = 500;
/// How long a stop waits for HAProxy before killing it.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The `maxconn` the machine can take: HAProxy needs two descriptors per
/// proxied connection and refuses to start when its `maxconn` needs more
/// than the hard `RLIMIT_NOFILE` it may raise itself to.
pub fn maxconn_for(fd_hard_limit: Option<u64>) -> u32 {
    match fd_hard_limit {
        None => MAXCONN,
        Some(limit) => {
            let fits = limit.saturating_sub(FD_RESERVE) / 2;
            u32::try_from(fits).map_or(MAXCONN, |fits| fits.clamp(1, MAXCONN))
        }
    }
}

/// The hard open-files limit of this process (and so of its children), from
/// /proc/self/limits; `None` when unlimited or unreadable.
pub fn fd_hard_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_fd_hard_limit(&limits)
}

fn parse_fd_hard_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let _soft = fields.next()?;
    fields.next()?.parse().ok()
}

fn proxy_id(server: &VirtualServer) -> String {
    format!("{}_{}", server.service, server.bind.port())
}

/// Renders the whole configuration. Deterministic, so an unchanged set of
/// Services and endpoints renders the same text and causes no reload.
pub fn render(maxconn: u32, servers: &[VirtualServer]) -> String {
    let mut out = String::new();
    out.push_str(
        "# Written by urr-local-node: one frontend per Service port, one server per ready pod.\n",
    );
    let _ = write!(
        out,
        "global\n    maxconn {maxconn}\n    \
         # After a reload the old worker finishes its open requests; this bounds\n    \
         # how long keep-alive clients can keep it (and old pods) around.\n    \
         hard-stop-after 15s\n\n"
    );
    out.push_str(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 120s\n    \
         timeout server 120s\n    http-reuse safe\n    option http-keep-alive\n    \
         # A pod that stopped between two updates refuses the connection; the\n    \
         # retry goes to another server rather than failing the request.\n    \
         option redispatch\n    retries 2\n",
    );
    for server in servers {
        let id = proxy_id(server);
        let label = server
            .port_name
            .as_deref()
            .map_or_else(|| server.bind.port().to_string(), str::to_owned);
        let _ = write!(
            out,
            "\n# Service {} port {label}\nfrontend fe_{id}\n    bind {}\n    default_backend be_{id}\n\n\
             backend be_{id}\n    balance roundrobin\n",
            server.service, server.bind
        );
        if server.servers.is_empty() {
            // What a Service without ready endpoints gives a client, with a
            // body that says why.
            let _ = writeln!(
                out,
                "    http-request return status 503 content-type text/plain string \"no ready endpoints for service {}\"",
                server.service
            );
        }
        for backend in &server.servers {
            let _ = writeln!(out, "    server {} {}", backend.pod, backend.addr);
        }
    }
    out
}

/// Why HAProxy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HaproxyError {
    #[error(
        "haproxy ({binary}) cannot be run: {source}; install it (apt-get install haproxy) or pass --haproxy"
    )]
    NotInstalled {
        binary: String,
        #[source]
        source: io::Error,
    },
    #[error("haproxy ({binary}) -v failed: {output}")]
    Broken { binary: String, output: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("haproxy rejects the new configuration (kept the old one): {output}")]
    Invalid { output: String },
    #[error("cannot start haproxy: {0}")]
    Spawn(#[source] io::Error),
    #[error("cannot reload haproxy: {0}")]
    Reload(#[source] KillError),
}

/// What `apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Unchanged,
    Started,
    Reloaded,
    Stopped,
}

/// The HAProxy master process and the configuration it runs.
#[derive(Debug)]
pub struct Haproxy {
    binary: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// The configuration the running process has.
    applied: Option<String>,
    /// The last configuration HAProxy refused, not to be tried again.
    rejected: Option<String>,
}

impl Haproxy {
    /// Checks that `binary` runs; returns its version line.
    pub async fn check_installed(binary: &str) -> Result<String, HaproxyError> {
        let output = tokio::process::Command::new(binary)
            .arg("-v")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| HaproxyError::NotInstalled {
                binary: binary.to_owned(),
                source,
            })?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(HaproxyError::Broken {
                binary: binary.to_owned(),
                output: format!("{text}{}", String::from_utf8_lossy(&output.stderr)),
            });
        }
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }

    pub fn new(binary: &str, state_dir: &Path) -> Self {
        Self {
            binary: binary.to_owned(),
            config: state_dir.join("haproxy.cfg"),
            log: state_dir.join("haproxy.log"),
            child: None,
            applied: None,
            rejected: None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Runs HAProxy with `rendered`: validates a changed configuration,
    /// puts it in place and reloads, or starts HAProxy if it is not running
    /// (also after it died). Without frontends HAProxy refuses to start, so
    /// it is stopped until a Service appears.
    pub async fn apply(
        &mut self,
        rendered: &str,
        has_frontends: bool,
    ) -> Result<Applied, HaproxyError> {
        self.reap_exited();
        if !has_frontends {
            if self.child.is_some() {
                self.stop().await;
                return Ok(Applied::Stopped);
            }
            return Ok(Applied::Unchanged);
        }
        if self.child.is_some() && self.applied.as_deref() == Some(rendered) {
            return Ok(Applied::Unchanged);
        }
        if self.rejected.as_deref() == Some(rendered) {
            return Ok(Applied::Unchanged);
        }
        let candidate = self.config.with_extension("cfg.new");
        tokio::fs::write(&candidate, rendered)
            .await
            .map_err(|source| HaproxyError::Write {
                path: candidate.clone(),
                source,
            })?;
        let check = tokio::process::Command::new(&self.binary)
            .arg("-c")
            .arg("-f")
            .arg(&candidate)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(HaproxyError::Spawn)?;
        if !check.status.success() {
            self.rejected = Some(rendered.to_owned());
            return Err(HaproxyError::Invalid {
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&check.stdout),
                    String::from_utf8_lossy(&check.stderr)
                )
                .trim()
                .to_owned(),
            });
        }
        tokio::fs::rename(&candidate, &self.config)
            .await
            .map_err(|source| HaproxyError::Write {
                path: self.config.clone(),
                source,
            })?;
        let applied = match self.pid() {
            Some(pid) => {
                kill::signal(Signal::Usr2, pid)
                    .await
                    .map_err(HaproxyError::Reload)?;
                Applied::Reloaded
            }
            None => {
                self.spawn().await?;
                Applied::Started
            }
        };
        self.applied = Some(rendered.to_owned());
        Ok(applied)
    }

    async fn spawn(&mut self) -> Result<(), HaproxyError> {
        let log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .await
            .map_err(|source| HaproxyError::Write {
                path: self.log.clone(),
                source,
            })?
            .into_std()
            .await;
        let stderr = log.try_clone().map_err(HaproxyError::Spawn)?;
        let child = tokio::process::Command::new(&self.binary)
            .arg("-W")
            .arg("-db")
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            // Out of the terminal's process group: Ctrl-C reaches the node,
            // which stops HAProxy after the pods.
            .process_group(0)
            .spawn()
            .map_err(HaproxyError::Spawn)?;
        self.child = Some(child);
        Ok(())
    }

    /// Forgets a master that exited, so the next `apply` starts a new one.
    fn reap_exited(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                tracing::warn!(
                    "haproxy exited ({status}); restarting it (see {})",
                    self.log.display()
                );
                self.child = None;
                self.applied = None;
            }
            Err(error) => {
                tracing::warn!("cannot check on haproxy: {error}");
            }
        }
    }

    /// Stops HAProxy: SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.applied = None;
        if let Some(pid) = child.id()
            && let Err(error) = kill::signal(Signal::Term, pid).await
        {
            tracing::debug!("SIGTERM to haproxy: {error}");
        }
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            tracing::warn!("haproxy did not stop within {STOP_GRACE:?}; killing it");
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;
    use crate::services::Server;

    fn queue(servers: Vec<Server>) -> VirtualServer {
        VirtualServer {
            service: "demo-queue".to_owned(),
            port_name: Some("http".to_owned()),
            bind: SocketAddrV4::new(Ipv4Addr::new(127, 0, 2, 1), 80),
            servers,
        }
    }

    fn server(pod: &str, host: u8) -> Server {
        Server {
            pod: pod.to_owned(),
            addr: SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, host), 8080),
        }
    }

    #[test]
    fn renders_a_frontend_and_backend_per_service_port() {
        let config = render(
            9_000,
            &[queue(vec![
                server("demo-queue-abc-0", 1),
                server("demo-queue-abc-1", 2),
            ])],
        );
        for line in [
            "global\n    maxconn 9000\n",
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n    http-reuse safe\n    option http-keep-alive\n",
            "frontend fe_demo-queue_80\n    bind 127.0.2.1:80\n    default_backend be_demo-queue_80\n",
            "backend be_demo-queue_80\n    balance roundrobin\n    server demo-queue-abc-0 127.0.1.1:8080\n    server demo-queue-abc-1 127.0.1.2:8080\n",
        ] {
            assert!(config.contains(line), "missing {line:?} in:\n{config}");
        }
        assert!(!config.contains("return status 503"));
        assert_eq!(
            config,
            render(
                9_000,
                &[queue(vec![
                    server("demo-queue-abc-0", 1),
                    server("demo-queue-abc-1", 2)
                ])]
            )
        );
    }

    #[test]
    fn a_backend_without_ready_servers_answers_503() {
        let config = render(MAXCONN, &[queue(vec![])]);
        assert!(config.contains(
            "backend be_demo-queue_80\n    balance roundrobin\n    http-request return status 503"
        ));
        assert!(!config.contains("    server "));
    }

    #[test]
    fn maxconn_fits_the_descriptor_limit() {
        assert_eq!(maxconn_for(None), MAXCONN);
        assert_eq!(maxconn_for(Some(1_048_576)), MAXCONN);
        assert_eq!(maxconn_for(Some(20_000)), 9_750);
        assert_eq!(maxconn_for(Some(100)), 1);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 20000                files     \n";
        assert_eq!(parse_fd_hard_limit(limits), Some(20_000));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_fd_hard_limit(unlimited), None);
    }

    /// The rendered text is a configuration HAProxy itself accepts.
    #[tokio::test]
    async fn haproxy_accepts_the_rendered_configuration() {
        if Haproxy::check_installed("haproxy").await.is_err() {
            // The node refuses to start without HAProxy; this check needs it.
            eprintln!("SKIPPED: haproxy is not installed (apt-get install haproxy)");
            return;
        }
        let dir = crate::testing::scratch_dir("haproxy-check");
        let path = dir.join("haproxy.cfg");
        let mut second = queue(vec![]);
        second.service = "demo-ticket".to_owned();
        second.bind = SocketAddrV4::new(Ipv4Addr::new(127, 0, 2, 2), 80);
        let config = render(
            maxconn_for(fd_hard_limit()),
            &[queue(vec![server("demo-queue-abc-0", 1)]), second],
        );
        std::fs::write(&path, config).expect("write");
        let output = std::process::Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("haproxy -c");
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
