#![forbid(unsafe_code)]
//! `urr-operator`: thin entry point.
//!
//! ```text
//! urr-operator run [--namespace NS] [--listen 0.0.0.0:8080] [--leader-election true] ...
//! urr-operator render -f examples/event.yaml [--at 2026-12-12T10:45:00Z] [--namespace urr-demo]
//! urr-operator invite --namespace urr-demo --room aurora-seoul-2026 --count 100 --mode skip [--ttl-seconds 86400] [--link URL]
//! urr-operator page-preview --config-map examples/waiting-page/configmap.yaml --state waiting --lang ko --out /tmp/page
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use urr_crds::client_address::{ClientAddress, ClientAddressSource};
use urr_operator::children::Defaults;
use urr_operator::controller::{self, Context, SystemClock};
use urr_operator::invite::MintRequest;
use urr_operator::lease::Elector;
use urr_operator::metrics::{self, OperatorMetrics};
use urr_operator::render::render;
use urr_operator::stats::HttpStats;
use urr_operator::waiting_room::{self, RoomContext};
use urr_service_common::telemetry::{self, LogFormat};
use urr_service_common::tokens::invite::{self, InviteMode};

#[derive(Parser)]
#[command(name = "urr-operator", version, about = "URR operator")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster of the current kube config or service account.
    Run(RunArgs),
    /// Print the child objects the controller would apply for the Events in FILEs.
    Render {
        /// Manifests holding Events (other kinds are skipped).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// The moment to render for (replicas depend on it); default now.
        #[arg(long)]
        at: Option<Timestamp>,
        /// Namespace of Events that name none.
        #[arg(long, default_value = "default", env = "URR_NAMESPACE")]
        namespace: String,
        /// Image tag of the runtime services when an Event names no image.
        #[arg(long, env = "URR_IMAGE_TAG", default_value = env!("CARGO_PKG_VERSION"))]
        image_tag: String,
    },
    /// Mint invite or presale codes of a WaitingRoom with its signing key
    /// (read from the cluster); one per line: `<code id> <code>`, or a link.
    Invite(InviteArgs),
    /// Render the waiting page of a template for one state into a folder
    /// (index.html and assets/) to open offline; a bad template is refused
    /// with the words of the PageTemplateValid condition.
    PagePreview(PreviewArgs),
}

#[derive(clap::Args)]
struct InviteArgs {
    #[arg(long, env = "URR_NAMESPACE", default_value = "default")]
    namespace: String,
    /// The WaitingRoom's name.
    #[arg(long)]
    room: String,
    /// How many codes.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// `skip` (admitted on join) or `priority` (ahead of the line).
    #[arg(long, default_value = "priority", value_parser = parse_mode)]
    mode: InviteMode,
    /// Lifetime from now; default: until the room's spec.invites.validUntil.
    #[arg(long)]
    ttl_seconds: Option<u64>,
    /// Starts each code id (a campaign or partner).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Print `<link>?urr-invite=<code>` (the sale's page) instead.
    #[arg(long)]
    link: Option<String>,
}

fn parse_mode(text: &str) -> Result<InviteMode, &'static str> {
    match text {
        "skip" => Ok(InviteMode::Skip),
        "priority" => Ok(InviteMode::Priority),
        _ => Err("expected skip or priority"),
    }
}

fn invite(args: InviteArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("urr-operator: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let request = MintRequest {
        namespace: args.namespace,
        room: args.room,
        count: args.count,
        mode: args.mode,
        ttl_seconds: args.ttl_seconds,
        prefix: args.prefix,
    };
    let minted = runtime.block_on(async {
        let client = Client::try_default()
            .await
            .map_err(urr_operator::invite::MintError::NoCluster)?;
        urr_operator::invite::mint(&client, &request).await
    });
    match minted {
        Ok(codes) => {
            for code in codes {
                match &args.link {
                    Some(link) => {
                        let joiner = if link.contains('?') { '&' } else { '?' };
                        println!("{link}{joiner}{}={}", invite::QUERY_PARAMETER, code.code);
                    }
                    None => println!("{} {}", code.code_id, code.code),
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("urr-operator invite: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args)]
struct PreviewArgs {
    /// The template (HTML); without it and --config-map, the default page.
    #[arg(long, conflicts_with = "config_map")]
    template: Option<PathBuf>,
    /// A ConfigMap manifest, as applied: its template.html and its values.
    #[arg(long)]
    config_map: Option<PathBuf>,
    /// A value, KEY=VALUE (eventName, logoUrl, brandColor, accentColor);
    /// over the ConfigMap's.
    #[arg(long = "set", value_parser = parse_pair)]
    values: Vec<(String, String)>,
    /// The Event's displayName, for {{eventName}} when no value sets it.
    #[arg(long, default_value = "Preview event")]
    event_name: String,
    /// before-open, waiting, your-turn, paused, sold-out or closed.
    #[arg(long, default_value = "waiting")]
    state: String,
    /// en, ko or ja.
    #[arg(long, default_value = "en")]
    lang: String,
    /// The folder to write index.html and assets/ to.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not KEY=VALUE")]
struct NotKeyValue(String);

fn parse_pair(text: &str) -> Result<(String, String), NotKeyValue> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| NotKeyValue(text.to_owned()))
}

fn page_preview(args: PreviewArgs) -> ExitCode {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map_err(|error| eprintln!("urr-operator: cannot read {}: {error}", path.display()))
    };
    let (mut template, mut values) = (None, std::collections::BTreeMap::new());
    if let Some(path) = &args.config_map {
        let Ok(text) = read(path) else {
            return ExitCode::FAILURE;
        };
        match urr_operator::page_preview::from_config_map(&text) {
            Ok((t, v)) => (template, values) = (t, v),
            Err(error) => {
                eprintln!(
                    "urr-operator: {} is not a ConfigMap: {error}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = &args.template {
        let Ok(text) = read(path) else {
            return ExitCode::FAILURE;
        };
        template = Some(text);
    }
    values.extend(args.values);
    let files = match urr_operator::page_preview::render(
        template.as_deref(),
        &values,
        &args.event_name,
        &args.state,
        &args.lang,
    ) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("urr-operator: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = urr_operator::page_preview::write(&args.out, &files) {
        eprintln!("urr-operator: {error}");
        return ExitCode::FAILURE;
    }
    println!("{}", args.out.join("index.html").display());
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch one namespace only; all namespaces when unset.
    #[arg(long, env = "URR_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /metrics, /healthz, /readyz and /leader.
    #[arg(long, env = "URR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// `json` or `text`.
    #[arg(long, env = "URR_LOG_FORMAT", default_value = "json")]
    log_format: LogFormat,
    /// Elect a leader on a Lease, so only one replica writes.
    #[arg(long, env = "URR_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    #[arg(long, env = "URR_LEASE_NAME", default_value = "urr-operator")]
    lease_name: String,
    /// Namespace of the Lease (the operator's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "urr-system")]
    lease_namespace: String,
    /// This replica's identity in the Lease (the pod name, from the downward API).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Image repository of the runtime services when an Event names no image.
    #[arg(long, env = "URR_IMAGE_REPOSITORY", default_value = "ghcr.io/urr-dev")]
    image_repository: String,
    #[arg(long, env = "URR_IMAGE_TAG", default_value = env!("CARGO_PKG_VERSION"))]
    image_tag: String,
    /// Endpoint of the CloudFront and KeyValueStore APIs (an emulator or a VPC
    /// endpoint); AWS's own when unset.
    #[arg(long, env = "URR_AWS_ENDPOINT")]
    aws_endpoint: Option<String>,
    /// DNS suffix of cluster Services, for reading the services' stats.
    #[arg(long, env = "URR_CLUSTER_DOMAIN", default_value = "svc.cluster.local")]
    cluster_domain: String,
    /// Where the queue reads buyers' addresses from when an Event does not
    /// say (`spec.clientAddress`): what the cluster's ingress writes.
    #[arg(
        long,
        env = "URR_CLIENT_ADDRESS_SOURCE",
        value_enum,
        default_value = "peer"
    )]
    client_address_source: ClientAddressSource,
    /// With `x-forwarded-for`: how many proxies of the cluster append to it.
    #[arg(long, env = "URR_TRUSTED_PROXY_HOPS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    trusted_proxy_hops: u8,
}

/// How long a Lease holds without renewal; renewed every third of it.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// Why `urr-operator run` stopped before its controllers ran.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("no Kubernetes client configuration: {0}")]
    Client(#[source] kube::Error),
    #[error("lease: {0}")]
    Lease(#[source] kube::Error),
}

async fn run(args: RunArgs) -> Result<(), RunError> {
    telemetry::init(args.log_format);
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let metrics = Arc::new(OperatorMetrics::new());
    let server = tokio::spawn(metrics::serve(args.listen, metrics.clone()));
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("urr-operator-{}", std::process::id()));
    if args.leader_election {
        let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
        let elector = Elector {
            name: args.lease_name.clone(),
            identity: identity.clone(),
            duration: LEASE_DURATION,
        };
        tracing::info!(lease = %args.lease_name, %identity, "waiting to lead");
        loop {
            let holding = elector
                .try_hold(&leases, k8s_openapi::jiff::Timestamp::now())
                .await
                .map_err(RunError::Lease)?;
            // The API server answered (and RBAC let us read the Lease): this
            // replica can take over, so it is ready, standby or not. Readiness
            // is not leadership: a standby that never turned ready would stall
            // every rolling update of two replicas (see metrics.rs).
            metrics.set_ready();
            metrics.set_leading(holding);
            if holding {
                break;
            }
            tokio::time::sleep(LEASE_DURATION / 3).await;
        }
        tracing::info!(%identity, "leading");
        let renewal_metrics = metrics.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_DURATION / 3).await;
                match elector
                    .try_hold(&leases, k8s_openapi::jiff::Timestamp::now())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        renewal_metrics.set_leading(false);
                        tracing::error!(
                            "lost the lease to another replica; exiting to restart as a standby"
                        );
                        std::process::exit(2);
                    }
                    Err(error) => tracing::warn!(%error, "could not renew the lease; retrying"),
                }
            }
        });
    } else {
        // No election: wait until the API server answers, then lead.
        while let Err(error) = client.apiserver_version().await {
            tracing::warn!(%error, "the API server does not answer yet; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        metrics.set_ready();
        metrics.set_leading(true);
    }
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "urr-operator".into(),
            instance: Some(identity),
        },
    );
    let defaults = Defaults {
        image_repository: args.image_repository,
        image_tag: args.image_tag,
        client_address: ClientAddress {
            source: args.client_address_source,
            trusted_hops: args.trusted_proxy_hops,
        },
    };
    let stats = Arc::new(HttpStats::new(args.cluster_domain));
    let rooms = Arc::new(
        RoomContext::new(
            client.clone(),
            stats.clone(),
            Arc::new(SystemClock),
            args.aws_endpoint,
        )
        .with_recorder(recorder.clone()),
    );
    let ctx = Context::new(
        client,
        recorder,
        defaults,
        stats,
        Arc::new(SystemClock),
        metrics.clone(),
    );
    tokio::join!(
        controller::run(ctx, args.namespace.as_deref()),
        waiting_room::run(rooms, args.namespace.as_deref())
    );
    server.abort();
    tracing::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    // Before any TLS connection: the policy Redis may be rediss:// (ElastiCache).
    urr_service_common::install_tls_provider();
    match Args::parse().command {
        Command::PagePreview(args) => page_preview(args),
        Command::Run(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("urr-operator: cannot start the runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("urr-operator: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Invite(args) => invite(args),
        Command::Render {
            files,
            at,
            namespace,
            image_tag,
        } => {
            let defaults = Defaults {
                image_tag,
                ..Defaults::default()
            };
            let now = at.unwrap_or_else(Timestamp::now);
            // One stream of every file, so a WaitingRoom in one file wires
            // the Event of another.
            let mut stream = String::new();
            for file in &files {
                match std::fs::read_to_string(file) {
                    Ok(text) => {
                        stream.push_str(&text);
                        stream.push_str("\n---\n");
                    }
                    Err(error) => {
                        eprintln!("urr-operator: cannot read {}: {error}", file.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
            let documents = match render(&stream, now, &namespace, &defaults) {
                Ok(rendered) => rendered,
                Err(error) => {
                    eprintln!("urr-operator: {error}");
                    return ExitCode::FAILURE;
                }
            };
            print!("{}", documents.join("---\n"));
            ExitCode::SUCCESS
        }
    }
}
