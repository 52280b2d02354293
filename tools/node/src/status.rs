//! `<state-dir>/status.json`: what callers poll to wait for readiness and
//! to find Service addresses. Replaced whole each loop (written beside it,
//! then renamed), so a reader never sees half a file.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Status {
    pub services: BTreeMap<String, ServiceStatus>,
    pub deployments: BTreeMap<String, DeploymentStatus>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// The Service's local cluster IP (spelled as in a Service's spec).
    #[serde(rename = "clusterIP")]
    pub cluster_ip: String,
    /// `<clusterIP>:<port>` of the first port; null without ports.
    pub address: Option<String>,
    pub ports: Vec<PortStatus>,
    /// The first port's endpoints (`<podIP>:<targetPort>` of ready pods).
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PortStatus {
    pub name: Option<String>,
    pub port: u16,
    pub address: String,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// `min(spec.replicas, --max-replicas)`.
    pub desired: u32,
    pub spec_replicas: i32,
    /// Processes of the current template that are alive.
    pub running: u32,
    /// Of those, the ready ones: `ready == desired` means rolled out.
    pub ready: u32,
    /// Restarts of every pod listed.
    pub restarts: u32,
    pub template_hash: Option<String>,
    /// Every pod, old-template pods still serving during a rollout included.
    pub pods: Vec<PodStatus>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub name: String,
    pub ip: String,
    pub pid: Option<u32>,
    pub ready: bool,
    pub restarts: u32,
    /// RFC 3339, of the current run.
    pub started: Option<String>,
    pub template_hash: String,
    /// `Running` or `Waiting`.
    pub state: String,
    /// Why it waits: a start error or the back-off after an exit.
    pub reason: Option<String>,
}

/// RFC 3339 in UTC.
pub fn timestamp(time: SystemTime) -> String {
    Timestamp::try_from(time).map_or_else(
        |_| {
            time.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string()
        },
        |t| t.to_string(),
    )
}

/// Writes `status` to `path` through a temporary file and a rename.
pub async fn write(path: &Path, status: &Status) -> io::Result<()> {
    let mut json = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
    json.push(b'\n');
    let temporary = path.with_extension("json.tmp");
    tokio::fs::write(&temporary, json).await?;
    tokio::fs::rename(&temporary, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_the_documented_shape() {
        let status = Status {
            services: BTreeMap::from([(
                "demo-queue".to_owned(),
                ServiceStatus {
                    cluster_ip: "127.0.2.1".to_owned(),
                    address: Some("127.0.2.1:80".to_owned()),
                    ports: vec![PortStatus {
                        name: Some("http".to_owned()),
                        port: 80,
                        address: "127.0.2.1:80".to_owned(),
                        endpoints: vec!["127.0.1.1:8080".to_owned()],
                    }],
                    endpoints: vec!["127.0.1.1:8080".to_owned()],
                },
            )]),
            deployments: BTreeMap::from([(
                "demo-queue".to_owned(),
                DeploymentStatus {
                    desired: 1,
                    spec_replicas: 20,
                    running: 1,
                    ready: 1,
                    restarts: 0,
                    template_hash: Some("0123456789".to_owned()),
                    pods: vec![PodStatus {
                        name: "demo-queue-0123456789-0".to_owned(),
                        ip: "127.0.1.1".to_owned(),
                        pid: Some(42),
                        ready: true,
                        restarts: 0,
                        started: Some("2026-01-01T00:00:00Z".to_owned()),
                        template_hash: "0123456789".to_owned(),
                        state: "Running".to_owned(),
                        reason: None,
                    }],
                    error: None,
                },
            )]),
        };
        let dir = crate::testing::scratch_dir("status");
        let path = dir.join("status.json");
        write(&path, &status).await.expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(json["services"]["demo-queue"]["address"], "127.0.2.1:80");
        assert_eq!(json["services"]["demo-queue"]["clusterIP"], "127.0.2.1");
        assert_eq!(json["deployments"]["demo-queue"]["specReplicas"], 20);
        assert_eq!(
            json["deployments"]["demo-queue"]["templateHash"],
            "0123456789"
        );
        assert_eq!(json["deployments"]["demo-queue"]["pods"][0]["pid"], 42);
        assert_eq!(
            json["deployments"]["demo-queue"]["error"],
            serde_json::Value::Null
        );
        assert!(!dir.join("status.json.tmp").exists());
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
        assert_eq!(timestamp(time), "1970-01-02T00:00:00Z");
    }
}
