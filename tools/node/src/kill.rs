//! Signals, sent by running `kill`: the workspace forbids `unsafe`, so there
//! is no `libc::kill` to call.

use std::process::Stdio;

/// The signals this node sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Asks a process to stop.
    Term,
    /// Ends a process that did not stop in time.
    Kill,
    /// Makes the HAProxy master reload its configuration.
    Usr2,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Term => "-TERM",
            Signal::Kill => "-KILL",
            Signal::Usr2 => "-USR2",
        }
    }
}

/// Why a signal was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error("could not run kill: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("kill {signal:?} {target} failed: {stderr}")]
    Failed {
        signal: Signal,
        target: String,
        stderr: String,
    },
}

/// Sends `signal` to the process `pid`.
pub async fn signal(signal: Signal, pid: u32) -> Result<(), KillError> {
    run(signal, pid.to_string()).await
}

/// Sends `signal` to every process in the process group `pgid`: what a
/// container runtime does to everything left in a container's cgroup.
pub async fn signal_group(signal: Signal, pgid: u32) -> Result<(), KillError> {
    run(signal, format!("-{pgid}")).await
}

async fn run(signal: Signal, target: String) -> Result<(), KillError> {
    let output = tokio::process::Command::new("kill")
        .arg(signal.flag())
        .arg("--")
        .arg(&target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(KillError::Spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(KillError::Failed {
            signal,
            target,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
