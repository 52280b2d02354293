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

/// A start-up step that failed: what the service was doing, and why, with
/// the cause kept as the error's source (not flattened into a string).
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct StepFailed {
    pub step: &'static str,
    #[source]
    pub source: StartError,
}

/// `.context("cannot connect to Redis")?` on a start-up step.
pub trait Context<T> {
    fn context(self, step: &'static str) -> Result<T, StepFailed>;
}

impl<T, E> Context<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, step: &'static str) -> Result<T, StepFailed> {
        self.map_err(|source| StepFailed {
            step,
            source: Box::new(source),
        })
    }
}

/// `Debug` showing only the named fields: for a struct that holds secrets
/// (database and Redis URLs with their passwords, signing keys), so a stray
/// `{config:?}` cannot print one, or members that have no `Debug` (clients,
/// scripts, caches).
#[macro_export]
macro_rules! debug_fields {
    ($type:ident { $($field:ident),* $(,)? }) => {
        impl ::std::fmt::Debug for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

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

/// What every service is told at start: where it listens, the Event it
/// serves, how it verifies user JWTs, its server limits and its log format
/// (`#[command(flatten)]` into each service's config).
#[derive(Clone, clap::Args)]
pub struct ServiceArgs {
    #[arg(long, env = "URR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// The Event this service serves (its name, the id in every key and URL).
    #[arg(long, env = "URR_EVENT_ID")]
    pub event: String,
    #[command(flatten)]
    pub user_jwt: crate::tokens::user::UserJwtArgs,
    /// Header-read and request timeouts, body and connection limits, origin check.
    #[command(flatten)]
    pub server: crate::server::ServerArgs,
    /// `json` or `text`.
    #[arg(long, env = "URR_LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,
}

// The JWT arguments hold the HS256 secret.
crate::debug_fields!(ServiceArgs { listen, event });

impl ServiceArgs {
    /// Both listeners: the API on `listen`, the probes, `/metrics` and
    /// `/internal/*` on the server's internal address.
    pub fn listeners(&self) -> Listen {
        Listen {
            public: self.listen,
            internal: self.server.internal_listen,
        }
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
