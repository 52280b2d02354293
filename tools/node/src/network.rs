//! The node's network: loopback addresses for pods (127.0.1.N) and Service
//! cluster IPs (127.0.2.N), the hosts file that stands in for cluster DNS,
//! and the one rewrite that host networking needs (listen addresses).
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so any of
//! these addresses can be bound without configuring anything.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// An address range is used up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no free address left in {prefix}.0/24")]
pub struct Exhausted {
    prefix: String,
}

/// How a pool hands out addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// The lowest free address: Service addresses are predictable
    /// (the first Service is 127.0.2.1).
    LowestFree,
    /// The next free address after the last one handed out: a pod's address
    /// is not reused at once, so a client or HAProxy still holding the old
    /// pod's address cannot reach its replacement by accident.
    Rotating,
}

/// Addresses `a.b.c.1` to `a.b.c.254`.
#[derive(Debug, Clone)]
pub struct IpPool {
    prefix: [u8; 3],
    allocation: Allocation,
    used: BTreeSet<u8>,
    last: u8,
}

impl IpPool {
    /// 127.0.1.N, one per pod.
    pub fn pods() -> Self {
        Self::new([127, 0, 1], Allocation::Rotating)
    }

    /// 127.0.2.N, one per Service.
    pub fn services() -> Self {
        Self::new([127, 0, 2], Allocation::LowestFree)
    }

    pub fn new(prefix: [u8; 3], allocation: Allocation) -> Self {
        Self {
            prefix,
            allocation,
            used: BTreeSet::new(),
            last: 0,
        }
    }

    pub fn allocate(&mut self) -> Result<Ipv4Addr, Exhausted> {
        let start = match self.allocation {
            Allocation::LowestFree => 1,
            Allocation::Rotating => self.last % 254 + 1,
        };
        let host = (0..254u16)
            .filter_map(|offset| u8::try_from((u16::from(start) - 1 + offset) % 254 + 1).ok())
            .find(|host| !self.used.contains(host))
            .ok_or_else(|| Exhausted {
                prefix: self.prefix.map(|o| o.to_string()).join("."),
            })?;
        self.used.insert(host);
        self.last = host;
        let [a, b, c] = self.prefix;
        Ok(Ipv4Addr::new(a, b, c, host))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        let [a, b, c, host] = ip.octets();
        if [a, b, c] == self.prefix {
            self.used.remove(&host);
        }
    }
}

/// One Service in the hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub name: String,
    pub ip: Ipv4Addr,
}

/// The hosts file: localhost, then every Service under each name cluster DNS
/// answers for it from inside its namespace (`<name>`, `<name>.<ns>`,
/// `<name>.<ns>.svc`, `<name>.<ns>.svc.<cluster-domain>`).
pub fn render_hosts(namespace: &str, cluster_domain: &str, entries: &[HostEntry]) -> String {
    let mut out = String::from("127.0.0.1 localhost\n::1 localhost\n");
    let sorted: BTreeMap<&str, Ipv4Addr> =
        entries.iter().map(|e| (e.name.as_str(), e.ip)).collect();
    for (name, ip) in sorted {
        out.push_str(&format!(
            "{ip} {name} {name}.{namespace} {name}.{namespace}.svc {name}.{namespace}.svc.{cluster_domain}\n"
        ));
    }
    out
}

/// The hosts file on disk, rewritten in place: callers bind-mount it over
/// /etc/hosts, and a bind mount follows the inode, so a rename would leave
/// them reading the old file forever.
#[derive(Debug)]
pub struct HostsFile {
    path: PathBuf,
    written: Option<String>,
}

impl HostsFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            written: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `content` unless it is what the file already holds; true when
    /// it wrote. One write after the truncation keeps the window in which a
    /// reader sees a short file as small as it can be without a rename.
    pub async fn write(&mut self, content: &str) -> io::Result<bool> {
        if self.written.as_deref() == Some(content) {
            return Ok(false);
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .await?;
        file.write_all(content.as_bytes()).await?;
        file.flush().await?;
        self.written = Some(content.to_owned());
        Ok(true)
    }
}

/// The pod network substitution. A pod has its own network namespace, so
/// `0.0.0.0:8080` there means "port 8080 on my pod IP"; here every process
/// shares the host's network, so a value that is exactly `0.0.0.0:<p>` or
/// `[::]:<p>`, with `p` a declared containerPort, becomes `<podIP>:<p>` and
/// each replica binds its own address.
pub fn substitute_listen(value: &str, pod_ip: Ipv4Addr, ports: &BTreeSet<u16>) -> Option<String> {
    let port = value
        .strip_prefix("0.0.0.0:")
        .or_else(|| value.strip_prefix("[::]:"))?;
    let port: u16 = port.parse().ok()?;
    ports.contains(&port).then(|| format!("{pod_ip}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_addresses_are_lowest_free_and_kept() {
        let mut pool = IpPool::services();
        let a = pool.allocate().expect("free");
        let b = pool.allocate().expect("free");
        assert_eq!(a, Ipv4Addr::new(127, 0, 2, 1));
        assert_eq!(b, Ipv4Addr::new(127, 0, 2, 2));
        pool.release(a);
        assert_eq!(pool.allocate(), Ok(a));
        assert_eq!(pool.allocate(), Ok(Ipv4Addr::new(127, 0, 2, 3)));
    }

    #[test]
    fn pod_addresses_rotate_and_run_out() {
        let mut pool = IpPool::pods();
        let first = pool.allocate().expect("free");
        assert_eq!(first, Ipv4Addr::new(127, 0, 1, 1));
        pool.release(first);
        assert_eq!(
            pool.allocate(),
            Ok(Ipv4Addr::new(127, 0, 1, 2)),
            "a released address is not handed out again at once"
        );
        for _ in 0..253 {
            pool.allocate().expect("still free");
        }
        assert!(pool.allocate().is_err(), "254 addresses in use");
        pool.release(Ipv4Addr::new(127, 0, 1, 9));
        assert_eq!(pool.allocate(), Ok(Ipv4Addr::new(127, 0, 1, 9)));
    }

    #[test]
    fn hosts_list_every_cluster_dns_name() {
        let entries = [
            HostEntry {
                name: "demo-ticket".to_owned(),
                ip: Ipv4Addr::new(127, 0, 2, 2),
            },
            HostEntry {
                name: "demo-queue".to_owned(),
                ip: Ipv4Addr::new(127, 0, 2, 1),
            },
        ];
        assert_eq!(
            render_hosts("urr-demo", "svc.cluster.local", &entries),
            "127.0.0.1 localhost\n\
             ::1 localhost\n\
             127.0.2.1 demo-queue demo-queue.urr-demo demo-queue.urr-demo.svc demo-queue.urr-demo.svc.svc.cluster.local\n\
             127.0.2.2 demo-ticket demo-ticket.urr-demo demo-ticket.urr-demo.svc demo-ticket.urr-demo.svc.svc.cluster.local\n"
        );
        assert_eq!(
            render_hosts("urr-demo", "cluster.local", &[]),
            "127.0.0.1 localhost\n::1 localhost\n"
        );
    }

    #[tokio::test]
    async fn hosts_file_is_rewritten_in_place() {
        use std::io::{Read, Seek};
        let dir = crate::testing::scratch_dir("hosts");
        let path = dir.join("hosts");
        let mut hosts = HostsFile::new(path.clone());
        assert!(hosts.write("one\n").await.expect("write"));
        // Held open like a bind mount holds it: it sees a rewrite only if
        // the rewrite went into this very file.
        let mut held = std::fs::File::open(&path).expect("open");
        assert!(!hosts.write("one\n").await.expect("write"), "unchanged");
        for content in ["two, longer\n", "3\n"] {
            assert!(hosts.write(content).await.expect("write"));
            let mut seen = String::new();
            held.rewind().expect("rewind");
            held.read_to_string(&mut seen).expect("read");
            assert_eq!(seen, content, "the open file shows the rewrite");
        }
    }

    #[test]
    fn listen_addresses_move_to_the_pod_ip() {
        let ip = Ipv4Addr::new(127, 0, 1, 4);
        let ports = BTreeSet::from([8080, 9090]);
        let sub = |v: &str| substitute_listen(v, ip, &ports);
        assert_eq!(sub("0.0.0.0:8080").as_deref(), Some("127.0.1.4:8080"));
        assert_eq!(sub("[::]:9090").as_deref(), Some("127.0.1.4:9090"));
        assert_eq!(sub("0.0.0.0:7000"), None, "not a declared port");
        assert_eq!(sub("127.0.0.1:8080"), None);
        assert_eq!(sub("http://0.0.0.0:8080"), None, "only exact values");
        assert_eq!(sub("0.0.0.0:8080/x"), None);
        assert_eq!(sub("0.0.0.0:"), None);
    }
}
