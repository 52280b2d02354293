//! The frame every runtime service runs in, so the three `main.rs` say only
//! what is their own: [`main`] (logs, the TLS provider, the exit code),
//! [`Background`] (the tasks that stop after the listeners have drained),
//! [`serve`] (both listeners bound, served until SIGTERM or Ctrl-C) and
//! [`frame`] (the probes and `/metrics` every service's routers carry).

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::handler::Handler;
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::RequestMetrics;
use crate::server::{self, Routers, ServerSettings};
use crate::telemetry::{self, LogFormat};

/// What a service's start-up fails with: every cause keeps its own type
/// (configuration, connections, migrations), shown with its message.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Runs `run` as the process `name`: logs in `log_format` first, then the
/// TLS provider (before the first `rediss://` or PostgreSQL TLS
/// connection); a start-up error is logged and printed, and the process
/// exits non-zero.
pub async fn main(
    name: &'static str,
    log_format: LogFormat,
    run: impl Future<Output = Result<(), StartError>>,
) -> ExitCode {
    telemetry::init(log_format);
    crate::install_tls_provider();
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "{name} failed");
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The background tasks of a service (outbox relay, consumers, reaper,
/// admitter): they see the stop only once the listeners have drained, so
/// a request in flight still finds them running.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Background {
    /// Turns `true` when the service stops.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Waits for `task` on the way out.
    pub fn push(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            // A task that panicked has nothing left to drain.
            let _ = task.await;
        }
    }
}

impl Extend<JoinHandle<()>> for Background {
    fn extend<T: IntoIterator<Item = JoinHandle<()>>>(&mut self, tasks: T) {
        self.tasks.extend(tasks);
    }
}

/// Where a service listens.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    /// `URR_LISTEN`: the API.
    pub public: SocketAddr,
    /// `URR_INTERNAL_LISTEN`: `/internal/*`, `/metrics`, the probes.
    pub internal: SocketAddr,
}

/// Binds both listeners (an address in use fails start-up), then
/// `serving` (the service's own line in the log, with what it serves), and
/// serves `routers` until SIGTERM or Ctrl-C; then the listeners drain and
/// `background` stops.
pub async fn serve(
    listen: Listen,
    routers: Routers,
    settings: &ServerSettings,
    background: Background,
    serving: impl FnOnce(),
) -> Result<(), StartError> {
    let public = server::bind(listen.public).await?;
    let internal = server::bind(listen.internal).await?;
    serving();
    server::serve_split(
        public,
        internal,
        routers,
        settings,
        crate::shutdown::signal(),
    )
    .await;
    background.stop().await;
    Ok(())
}

/// The routers of a service: `public` and `internal` as it writes them,
/// with `/healthz` (the process answers) and `/readyz` (`readyz`: its
/// stores answer) on both, `/metrics` (`metrics`) on the internal one, and
/// every request's duration recorded in `requests`.
pub fn frame<S, R, M, TR, TM>(
    state: S,
    readyz: R,
    metrics: M,
    public: Router<S>,
    internal: Router<S>,
    requests: &RequestMetrics,
) -> Routers
where
    S: Clone + Send + Sync + 'static,
    R: Handler<TR, S>,
    M: Handler<TM, S>,
    TR: 'static,
    TM: 'static,
{
    let probes: Router<S> = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    Routers::new(
        state,
        probes,
        public,
        internal.route("/metrics", get(metrics)),
    )
    .measured(requests)
}
