//! Pods: a name, an address and a template, and the runs of its container
//! under `restartPolicy: Always`: an exited process is started again after
//! an exponential back-off, its environment resolved afresh each time, as
//! the kubelet resolves it for every container start.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::env::ObjectSource;
use crate::probe::Prober;
use crate::process::{self, ExitCause, Process, SpawnError};
use crate::template::{LaunchContext, LaunchError, PodName, Template};

/// The first restart waits this long; each further one twice as long...
const BACKOFF_START: Duration = Duration::from_secs(1);
/// ... up to this.
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A run this long counts as healthy and resets the back-off, so a pod that
/// crashes once a day restarts at once rather than after 30 s.
const BACKOFF_RESET: Duration = Duration::from_secs(60);
/// Lines of a pod's log shown when it exits.
const TAIL_LINES: usize = 10;

/// Why a start failed; the text is the pod's waiting reason.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

#[derive(Debug)]
enum Run {
    Waiting {
        next_attempt: Instant,
        reason: Option<String>,
    },
    Running(Process),
}

/// A pod's state for the status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pid: Option<u32>,
    pub ready: bool,
    pub restarts: u32,
    pub started: Option<SystemTime>,
    pub template_hash: String,
    /// `Waiting` or `Running`.
    pub state: &'static str,
    pub reason: Option<String>,
}

/// One pod of a Deployment.
#[derive(Debug)]
pub struct Pod {
    name: String,
    index: u32,
    template: Arc<Template>,
    ip: Ipv4Addr,
    uid: String,
    restarts: u32,
    runs: u32,
    backoff: Duration,
    run: Run,
    /// The log of the current or last run.
    log_path: Option<PathBuf>,
    /// Why the last start failed, until one succeeds.
    start_error: Option<String>,
}

impl Pod {
    /// A pod `<deployment>-<hash>-<index>` at `ip`, due to start now.
    pub fn new(deployment: &str, index: u32, template: Arc<Template>, ip: Ipv4Addr) -> Self {
        let name = format!("{deployment}-{}-{index}", template.hash);
        let uid = pod_uid(&name, ip);
        Self {
            name,
            index,
            template,
            ip,
            uid,
            restarts: 0,
            runs: 0,
            backoff: BACKOFF_START,
            run: Run::Waiting {
                next_attempt: Instant::now(),
                reason: None,
            },
            log_path: None,
            start_error: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    pub fn template(&self) -> &Arc<Template> {
        &self.template
    }

    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.run {
            Run::Running(process) => Some(process.pid()),
            Run::Waiting { .. } => None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(&self.run, Run::Running(p) if p.exit().is_none())
    }

    pub fn ready(&self) -> bool {
        matches!(&self.run, Run::Running(p) if p.ready())
    }

    /// The reason it is not running, if any (a start error or a back-off).
    pub fn reason(&self) -> Option<&str> {
        match &self.run {
            Run::Waiting { reason, .. } => reason.as_deref(),
            Run::Running(_) => None,
        }
    }

    /// Why the last start failed (a configuration or image error).
    pub fn start_error(&self) -> Option<&str> {
        self.start_error.as_deref()
    }

    /// Whether it waits for a start that is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        matches!(self.run, Run::Waiting { next_attempt, .. } if next_attempt <= now)
    }

    /// Notices an ended run: reports it with the end of the log and
    /// schedules the restart. True when a run had ended.
    pub async fn reap(&mut self) -> bool {
        let Run::Running(process) = &self.run else {
            return false;
        };
        let Some(exit) = process.exit() else {
            return false;
        };
        let uptime = process.uptime();
        if uptime >= BACKOFF_RESET {
            self.backoff = BACKOFF_START;
        }
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
        let log_path = self.log_path.clone().unwrap_or_default();
        let tail = match process::log_tail(&log_path, TAIL_LINES).await {
            Ok(lines) => lines.join("\n"),
            Err(error) => format!("(log unreadable: {error})"),
        };
        let why = match exit.cause {
            ExitCause::Exited => "exited",
            ExitCause::Liveness => "killed after failing its liveness probe",
            ExitCause::Stopped => "stopped",
        };
        tracing::warn!(
            pod = %self.name,
            ip = %self.ip,
            pid = process.pid(),
            "pod {why} ({}) after {:.1?}; restarting in {delay:?}; last lines of {}:\n{tail}",
            exit.status,
            uptime,
            log_path.display(),
        );
        self.run = Run::Waiting {
            next_attempt: Instant::now() + delay,
            reason: Some(format!(
                "CrashLoopBackOff: last run {why} with {}",
                exit.status
            )),
        };
        true
    }

    /// Starts the next run, resolving the environment from `objects`. On a
    /// configuration error the pod waits for the next loop; on a failure to
    /// run the program it backs off as after an exit.
    pub async fn start(
        &mut self,
        context: &LaunchContext,
        objects: &dyn ObjectSource,
        prober: &Prober,
    ) -> Result<(), StartError> {
        let identity = PodName {
            name: &self.name,
            uid: &self.uid,
            ip: self.ip,
        };
        let spec = match self.template.launch(&identity, context, objects) {
            Ok(spec) => spec,
            Err(error) => {
                self.wait(Instant::now(), &error);
                self.start_error = Some(error.to_string());
                return Err(error.into());
            }
        };
        if !spec.skipped_keys.is_empty() {
            tracing::warn!(
                pod = %self.name,
                "envFrom keys skipped, not valid variable names: {}",
                spec.skipped_keys.join(", ")
            );
        }
        match Process::spawn(&spec, prober).await {
            Ok(process) => {
                if self.runs > 0 {
                    self.restarts += 1;
                    tracing::info!(
                        pod = %self.name,
                        pid = process.pid(),
                        ip = %self.ip,
                        restarts = self.restarts,
                        "pod restarted"
                    );
                } else {
                    tracing::info!(
                        pod = %self.name,
                        pid = process.pid(),
                        ip = %self.ip,
                        "pod started"
                    );
                }
                self.runs += 1;
                self.start_error = None;
                self.run = Run::Running(process);
                self.log_path = Some(spec.log_path);
                Ok(())
            }
            Err(error) => {
                let delay = self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
                self.wait(Instant::now() + delay, &error);
                self.start_error = Some(error.to_string());
                Err(error.into())
            }
        }
    }

    fn wait(&mut self, next_attempt: Instant, reason: &dyn std::fmt::Display) {
        self.run = Run::Waiting {
            next_attempt,
            reason: Some(reason.to_string()),
        };
    }

    /// Stops the pod; `None` when nothing runs, otherwise a handle that
    /// finishes when the process is gone.
    pub fn stop(self) -> Option<JoinHandle<()>> {
        match self.run {
            Run::Running(process) => Some(process.stop()),
            Run::Waiting { .. } => None,
        }
    }

    pub fn view(&self) -> PodView {
        let (state, started) = match &self.run {
            Run::Running(process) => ("Running", Some(process.started())),
            Run::Waiting { .. } => ("Waiting", None),
        };
        PodView {
            name: self.name.clone(),
            ip: self.ip,
            pid: self.pid(),
            ready: self.ready(),
            restarts: self.restarts,
            started,
            template_hash: self.template.hash.clone(),
            state,
            reason: self.reason().map(str::to_owned),
        }
    }
}

/// A uuid-shaped uid, unique per pod (name, address and creation time).
fn pod_uid(name: &str, ip: Ipv4Addr) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::digest(format!("{name}/{ip}/{nanos}").as_bytes());
    let hex = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsString;
    use std::time::Duration;

    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector,
        PodSpec, PodTemplateSpec, Probe, SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::env::{Allocatable, Objects};
    use crate::kill::{self, Signal};

    fn context(dir: &std::path::Path) -> LaunchContext {
        let log_dir = dir.join("pods");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        LaunchContext {
            bin_dir: dir.to_path_buf(),
            log_dir,
            namespace: "urr-test".to_owned(),
            allocatable: Allocatable::default(),
            host_path: std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin")),
        }
    }

    fn template(container: Container) -> Arc<Template> {
        let spec = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                termination_grace_period_seconds: Some(2),
                ..PodSpec::default()
            }),
        };
        Arc::new(Template::from_spec(&spec).expect("valid template"))
    }

    /// The real interpreter behind any shim, so the pod needs nothing from
    /// the node's environment but PATH.
    fn python() -> String {
        let output = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("this test needs python3 on PATH");
        assert!(output.status.success(), "python3 does not run");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// An address no other test (nor a node running on this machine) uses.
    fn test_ip() -> Ipv4Addr {
        let host = u8::try_from(std::process::id() % 250 + 1).unwrap_or(1);
        Ipv4Addr::new(127, 0, 9, host)
    }

    async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out after {limit:?} waiting for {what}");
    }

    #[tokio::test]
    async fn a_real_process_becomes_ready_and_is_restarted_after_a_kill() {
        let dir = crate::testing::scratch_dir("pod");
        let context = context(&dir);
        let container = Container {
            name: "web".to_owned(),
            command: Some(vec![python()]),
            args: Some(
                ["-m", "http.server", "--bind", "$(POD_IP)", "8080"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            env: Some(vec![EnvVar {
                name: "POD_IP".to_owned(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "status.podIP".to_owned(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }]),
            ports: Some(vec![ContainerPort {
                name: Some("http".to_owned()),
                container_port: 8080,
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(Probe {
                http_get: Some(HTTPGetAction {
                    path: Some("/".to_owned()),
                    port: IntOrString::String("http".to_owned()),
                    ..HTTPGetAction::default()
                }),
                period_seconds: Some(1),
                ..Probe::default()
            }),
            ..Container::default()
        };
        let ip = test_ip();
        let prober = Prober::new().expect("prober");
        let objects = Objects::default();
        let mut pod = Pod::new("web", 0, template(container), ip);
        assert!(pod.is_due(Instant::now()));
        pod.start(&context, &objects, &prober)
            .await
            .expect("starts");
        let first = pod.pid().expect("a pid");
        assert!(!pod.ready(), "not ready before its probe passes");
        wait_for("the pod to be ready", Duration::from_secs(30), async || {
            pod.ready()
        })
        .await;
        let body = reqwest::get(format!("http://{ip}:8080/"))
            .await
            .expect("the pod serves on its own address");
        assert!(body.status().is_success());

        kill::signal(Signal::Kill, first).await.expect("kill");
        // What the node's loop does each tick: reap, then start when due.
        wait_for("the restart", Duration::from_secs(60), async || {
            pod.reap().await;
            if pod.is_due(Instant::now()) {
                let _ = pod.start(&context, &objects, &prober).await;
            }
            pod.restarts() == 1 && pod.ready()
        })
        .await;
        let second = pod.pid().expect("a pid");
        assert_ne!(first, second);
        assert_eq!(pod.view().state, "Running");

        let log = std::fs::read_to_string(
            context
                .log_dir
                .join("web-".to_owned() + &pod.template().hash + "-0.log"),
        )
        .expect("the pod's log");
        assert_eq!(log.matches("==> urr-local-node:").count(), 2, "{log}");

        let handle = pod.stop().expect("it runs");
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("stops within its grace period")
            .expect("supervisor");
        assert!(
            !std::path::Path::new(&format!("/proc/{second}")).exists(),
            "the process is gone"
        );
    }

    #[tokio::test]
    async fn a_missing_secret_key_keeps_the_pod_waiting_without_its_value() {
        let dir = crate::testing::scratch_dir("pod-config");
        let context = context(&dir);
        let container = Container {
            name: "web".to_owned(),
            command: Some(vec!["/bin/true".to_owned()]),
            env: Some(vec![EnvVar {
                name: "TOKEN".to_owned(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "urr-auth".to_owned(),
                        key: "x".to_owned(),
                        optional: None,
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }]),
            ..Container::default()
        };
        let mut objects = Objects::default();
        objects.insert_secret(
            "urr-auth",
            BTreeMap::from([("other".to_owned(), b"hunter2".to_vec())]),
        );
        let prober = Prober::new().expect("prober");
        let mut pod = Pod::new("web", 0, template(container), test_ip());
        let error = pod
            .start(&context, &objects, &prober)
            .await
            .expect_err("the key is missing");
        let expected = r#"CreateContainerConfigError: secret "urr-auth" key "x" not found"#;
        assert_eq!(error.to_string(), expected);
        assert_eq!(pod.start_error(), Some(expected));
        let view = pod.view();
        assert_eq!((view.state, view.pid), ("Waiting", None));
        assert!(!format!("{view:?}").contains("hunter2"));
        assert!(pod.is_due(Instant::now()), "retried on the next loop");
    }
}
