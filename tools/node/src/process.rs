//! One run of a pod's container: the child process with its log, its
//! probes, and how it is stopped (SIGTERM, the grace period, SIGKILL to its
//! whole process group, as a container runtime ends a container's cgroup).

use std::io::{self, SeekFrom};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::env::Environment;
use crate::kill::{self, Signal};
use crate::probe::{ProbeSpec, Prober};
use crate::template::LaunchSpec;

/// Liveness probes wait at least this long after a start: a service that
/// warms caches on a busy 2-core machine must not be killed while it does.
pub const LIVENESS_GRACE: Duration = Duration::from_secs(30);

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// The process exited by itself.
    Exited,
    /// Killed after its liveness probe failed.
    Liveness,
    /// Stopped by the node (scale-down, rollout, shutdown).
    Stopped,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// `exit status: 1`, `signal: 9 (SIGKILL)`.
    pub status: String,
    pub success: bool,
    pub cause: ExitCause,
}

/// What a run is doing now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunState {
    pub ready: bool,
    pub exit: Option<Exit>,
}

/// Why a process did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot open the log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("RunContainerError: cannot run {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("RunContainerError: the process exited before it had a pid")]
    NoPid,
}

/// A running (or just ended) process.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    started: SystemTime,
    started_at: Instant,
    state: watch::Receiver<RunState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Process {
    /// Starts `spec`'s process with stdout and stderr appended to its log.
    pub async fn spawn(spec: &LaunchSpec, prober: &Prober) -> Result<Self, SpawnError> {
        let log_error = |source| SpawnError::Log {
            path: spec.log_path.clone(),
            source,
        };
        let mut log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .await
            .map_err(log_error)?;
        let started = SystemTime::now();
        // A marker between runs, for whoever reads the log. The program only:
        // arguments may carry expanded secrets.
        let marker = format!(
            "==> urr-local-node: {} starting at {} on {}: {}\n",
            spec.pod,
            crate::status::timestamp(started),
            spec.ip,
            spec.program.display()
        );
        log.write_all(marker.as_bytes()).await.map_err(log_error)?;
        let log = log.into_std().await;
        let stderr = log.try_clone().map_err(log_error)?;
        let mut command = tokio::process::Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(spec.env.iter())
            .current_dir(&spec.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C in the node's terminal reaches
            // the node only, which then stops pods gracefully; and the group
            // is what SIGKILL ends, children included.
            .process_group(0);
        let child = command.spawn().map_err(|source| SpawnError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
        let pid = child.id().ok_or(SpawnError::NoPid)?;
        let (state_tx, state) = watch::channel(RunState {
            // No readiness probe: ready once started, as in Kubernetes.
            ready: spec.readiness.is_none(),
            exit: None,
        });
        let (stop, stop_rx) = oneshot::channel();
        let run = Run {
            pod: spec.pod.clone(),
            ip: spec.ip,
            pid,
            grace: spec.grace,
            env: spec.env.clone(),
            readiness: spec.readiness.clone(),
            liveness: spec.liveness.clone(),
            prober: prober.clone(),
        };
        let task = tokio::spawn(run.supervise(child, state_tx, stop_rx));
        Ok(Self {
            pid,
            started,
            started_at: Instant::now(),
            state,
            stop: Some(stop),
            task,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn started(&self) -> SystemTime {
        self.started
    }

    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    pub fn state(&self) -> RunState {
        self.state.borrow().clone()
    }

    pub fn ready(&self) -> bool {
        let state = self.state.borrow();
        state.ready && state.exit.is_none()
    }

    pub fn exit(&self) -> Option<Exit> {
        self.state.borrow().exit.clone()
    }

    /// Stops the process (SIGTERM, then SIGKILL after the grace period);
    /// the handle finishes when it is gone.
    pub fn stop(mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            // An error means the run already ended; the handle says so.
            let _ = stop.send(());
        }
        self.task
    }
}

/// What the supervising task needs.
struct Run {
    pod: String,
    ip: Ipv4Addr,
    pid: u32,
    grace: Duration,
    env: Environment,
    readiness: Option<ProbeSpec>,
    liveness: Option<ProbeSpec>,
    prober: Prober,
}

enum Outcome {
    Exited(io::Result<ExitStatus>),
    Stop,
    Liveness,
}

impl Run {
    async fn supervise(
        self,
        mut child: Child,
        state: watch::Sender<RunState>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let readiness = self.readiness.clone().map(|probe| {
            tokio::spawn(readiness_loop(
                probe,
                self.ip,
                self.env.clone(),
                self.prober.clone(),
                self.pod.clone(),
                state.clone(),
            ))
        });
        // The sender stays here, so `recv` only ever returns a failure report.
        let (failed_tx, mut failed) = mpsc::channel(1);
        let liveness = self.liveness.clone().map(|probe| {
            tokio::spawn(liveness_loop(
                probe,
                self.ip,
                self.env.clone(),
                self.prober.clone(),
                self.pod.clone(),
                failed_tx.clone(),
            ))
        });
        let outcome = tokio::select! {
            status = child.wait() => Outcome::Exited(status),
            // Sent, or the Process was dropped: both mean stop.
            _ = &mut stop => Outcome::Stop,
            Some(()) = failed.recv() => Outcome::Liveness,
        };
        for task in [readiness, liveness].into_iter().flatten() {
            task.abort();
        }
        // Out of the endpoints before the process is signalled.
        state.send_modify(|s| s.ready = false);
        let (status, cause) = match outcome {
            Outcome::Exited(status) => (status, ExitCause::Exited),
            Outcome::Stop => (self.terminate(&mut child).await, ExitCause::Stopped),
            Outcome::Liveness => (self.terminate(&mut child).await, ExitCause::Liveness),
        };
        // Whatever the main process left running in its group goes with it.
        let _ = kill::signal_group(Signal::Kill, self.pid).await;
        let exit = match status {
            Ok(status) => Exit {
                status: status.to_string(),
                success: status.success(),
                cause,
            },
            Err(error) => Exit {
                status: format!("unknown (waiting for it failed: {error})"),
                success: false,
                cause,
            },
        };
        state.send_modify(|s| s.exit = Some(exit));
        drop(failed_tx);
    }

    async fn terminate(&self, child: &mut Child) -> io::Result<ExitStatus> {
        if let Err(error) = kill::signal(Signal::Term, self.pid).await {
            tracing::debug!(pod = %self.pod, pid = self.pid, "SIGTERM: {error}");
        }
        match tokio::time::timeout(self.grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!(
                    pod = %self.pod,
                    pid = self.pid,
                    "did not stop within {:?} of SIGTERM; sending SIGKILL",
                    self.grace
                );
                if let Err(error) = kill::signal_group(Signal::Kill, self.pid).await {
                    tracing::debug!(pod = %self.pod, pid = self.pid, "SIGKILL: {error}");
                }
                // Sure to end it even if `kill` could not run.
                let _ = child.start_kill();
                child.wait().await
            }
        }
    }
}

async fn readiness_loop(
    probe: ProbeSpec,
    ip: Ipv4Addr,
    env: Environment,
    prober: Prober,
    pod: String,
    state: watch::Sender<RunState>,
) {
    tokio::time::sleep(probe.initial_delay).await;
    let mut ticker = tokio::time::interval(probe.period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut ready, mut successes, mut failures) = (false, 0u32, 0u32);
    loop {
        ticker.tick().await;
        match prober.check(&probe, ip, &env).await {
            Ok(()) => {
                failures = 0;
                successes = successes.saturating_add(1);
                if !ready && successes >= probe.success_threshold {
                    ready = true;
                    state.send_modify(|s| s.ready = true);
                    tracing::info!(pod = %pod, %ip, "pod ready");
                }
            }
            Err(error) => {
                successes = 0;
                failures = failures.saturating_add(1);
                tracing::debug!(pod = %pod, %ip, "readiness probe failed: {error}");
                if ready && failures >= probe.failure_threshold {
                    ready = false;
                    state.send_modify(|s| s.ready = false);
                    tracing::warn!(
                        pod = %pod,
                        %ip,
                        "pod not ready: readiness probe failed {failures} times: {error}"
                    );
                }
            }
        }
    }
}

async fn liveness_loop(
    probe: ProbeSpec,
    ip: Ipv4Addr,
    env: Environment,
    prober: Prober,
    pod: String,
    failed: mpsc::Sender<()>,
) {
    tokio::time::sleep(probe.initial_delay.max(LIVENESS_GRACE)).await;
    let mut ticker = tokio::time::interval(probe.period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        ticker.tick().await;
        match prober.check(&probe, ip, &env).await {
            Ok(()) => failures = 0,
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::debug!(pod = %pod, %ip, "liveness probe failed: {error}");
                if failures >= probe.failure_threshold {
                    tracing::warn!(
                        pod = %pod,
                        %ip,
                        "liveness probe failed {failures} times ({error}); restarting"
                    );
                    let _ = failed.send(()).await;
                    return;
                }
            }
        }
    }
}

/// The last `lines` lines of a log, read from its end (logs of a load test
/// grow to gigabytes).
pub async fn log_tail(path: &Path, lines: usize) -> io::Result<Vec<String>> {
    const WINDOW: u64 = 64 * 1024;
    let mut file = tokio::fs::File::open(path).await?;
    let length = file.metadata().await?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(WINDOW)))
        .await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    Ok(all[start..].iter().map(|l| (*l).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn log_tail_reads_the_last_lines() {
        let dir = crate::testing::scratch_dir("tail");
        let path = dir.join("pod.log");
        let text: String = (1..=2000).map(|i| format!("line {i}\n")).collect();
        tokio::fs::write(&path, text).await.expect("write");
        let tail = log_tail(&path, 3).await.expect("tail");
        assert_eq!(tail, ["line 1998", "line 1999", "line 2000"]);
    }
}
