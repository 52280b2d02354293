//! The loop: read the namespace from the API server, bring the processes,
//! the hosts file and HAProxy in line with it, write the status file.
//!
//! Every step tolerates the API server being away (the last state it
//! reported stays in force), so only startup problems end the node.
//!
//! [`deployments`] turns Deployments into pod goals and rollouts;
//! [`report`] is the status file's view of the node.

mod deployments;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Debug;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceSpec};
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::cli::Args;
use crate::env::{Allocatable, Objects, References};
use crate::haproxy::{self, Applied, Haproxy, HaproxyError};
use crate::network::{self, HostEntry, HostsFile, IpPool};
use crate::pods::Pod;
use crate::probe::Prober;
use crate::rollout::{self, Goal, Member, Strategy};
use crate::services::{self, Endpoint, VirtualServer};
use crate::status::{self, DeploymentStatus, PodStatus, PortStatus, ServiceStatus, Status};
use crate::template::{self, LaunchContext, Template};

/// Longest wait for one API call: a hung API server must not stall the
/// supervision of the pods that run.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest loop interval accepted.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// PATH for pods when the node itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Problems that stop the node from starting; anything later is logged and
/// retried.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--bin-dir {} is not a directory", .0.display())]
    BinDir(PathBuf),
    #[error(transparent)]
    Haproxy(#[from] HaproxyError),
    #[error("no Kubernetes client (is KUBECONFIG set?): {0}")]
    Kube(#[source] kube::Error),
    #[error("cannot listen for signals: {0}")]
    Signal(#[source] io::Error),
    #[error("cannot build the probe client: {0}")]
    Prober(#[source] reqwest::Error),
}

/// Why the ConfigMaps and Secrets of a pod could not be read.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("cannot read {kind} {name:?}: {source}")]
    Api {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {kind} {name:?} timed out")]
    Timeout { kind: &'static str, name: String },
}

/// Starts the node and runs it until SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<(), StartupError> {
    let state_dir = args.state_dir.clone();
    let state_error = |source| StartupError::StateDir {
        path: state_dir.clone(),
        source,
    };
    // The hosts file first: a caller may be waiting to bind-mount it.
    tokio::fs::create_dir_all(&state_dir)
        .await
        .map_err(state_error)?;
    let mut hosts = HostsFile::new(state_dir.join("hosts"));
    hosts
        .write(&network::render_hosts(
            &args.namespace,
            args.cluster_domain(),
            &[],
        ))
        .await
        .map_err(state_error)?;
    let log_dir = state_dir.join("pods");
    tokio::fs::create_dir_all(&log_dir)
        .await
        .map_err(state_error)?;
    let status_path = state_dir.join("status.json");
    // No status from an earlier run may pass for this one's.
    status::write(&status_path, &Status::default())
        .await
        .map_err(state_error)?;
    if !args.bin_dir.is_dir() {
        return Err(StartupError::BinDir(args.bin_dir.clone()));
    }
    let version = Haproxy::check_installed(&args.haproxy).await?;
    // One TLS crypto provider for the process: the workspace compiles rustls
    // with both ring and aws-lc-rs, so neither is picked implicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default().await.map_err(StartupError::Kube)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(StartupError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(StartupError::Signal)?;
    let prober = Prober::new().map_err(StartupError::Prober)?;

    let fd_limit = haproxy::fd_hard_limit();
    let maxconn = haproxy::maxconn_for(fd_limit);
    if maxconn < haproxy::MAXCONN {
        tracing::warn!(
            "haproxy maxconn lowered from {} to {maxconn} to fit the open-files limit ({})",
            haproxy::MAXCONN,
            fd_limit.unwrap_or_default()
        );
    }
    tracing::info!(
        namespace = %args.namespace,
        state_dir = %state_dir.display(),
        "urr-local-node up ({version}); hosts file {}",
        hosts.path().display()
    );
    let mut node = Node {
        context: LaunchContext {
            bin_dir: args.bin_dir.clone(),
            log_dir,
            namespace: args.namespace.clone(),
            allocatable: Allocatable::default(),
            host_path: std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH)),
        },
        haproxy: Haproxy::new(&args.haproxy, &state_dir),
        args,
        client,
        prober,
        hosts,
        maxconn,
        status_path,
        service_ips: IpPool::services(),
        pod_ips: IpPool::pods(),
        services: BTreeMap::new(),
        deployments: BTreeMap::new(),
        virtual_servers: Vec::new(),
        to_stop: Vec::new(),
        terminating: Vec::new(),
        api_healthy: true,
        last_haproxy_error: None,
    };
    let interval = Duration::from_millis(node.args.interval_ms).max(MIN_INTERVAL);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A tick runs to its end once begun; a signal that arrives meanwhile
        // waits in its stream and is seen next.
        tokio::select! {
            biased;
            _ = terminate.recv() => {
                tracing::info!("SIGTERM: stopping every pod");
                break;
            }
            _ = interrupt.recv() => {
                tracing::info!("SIGINT: stopping every pod");
                break;
            }
            _ = ticker.tick() => node.tick().await,
        }
    }
    node.shutdown().await;
    Ok(())
}

/// A Service and its local address.
#[derive(Debug)]
struct ServiceEntry {
    ip: Ipv4Addr,
    spec: Option<ServiceSpec>,
    /// Ports that cannot be served, as last logged.
    skipped: Vec<String>,
}

/// A Deployment and its pods.
#[derive(Debug, Default)]
struct DeploymentState {
    spec_replicas: i32,
    desired: u32,
    hash: Option<String>,
    template: Option<Arc<Template>>,
    template_error: Option<String>,
    strategy: Option<Strategy>,
    pods: Vec<Pod>,
    /// A rollout is under way (old-template pods remain).
    rolling: bool,
    /// The last error reading its ConfigMaps and Secrets.
    fetch_error: Option<String>,
}

/// A pod whose process is being stopped; its address is free once it is gone.
#[derive(Debug)]
struct Terminating {
    deployment: String,
    pod: String,
    ip: Ipv4Addr,
    handle: JoinHandle<()>,
}

/// The node's whole state (not `Debug`: the Kubernetes client is not).
struct Node {
    args: Args,
    client: Client,
    context: LaunchContext,
    prober: Prober,
    hosts: HostsFile,
    haproxy: Haproxy,
    maxconn: u32,
    status_path: PathBuf,
    service_ips: IpPool,
    pod_ips: IpPool,
    services: BTreeMap<String, ServiceEntry>,
    deployments: BTreeMap<String, DeploymentState>,
    virtual_servers: Vec<VirtualServer>,
    /// Pods leaving this loop, signalled once HAProxy no longer sends to them.
    to_stop: Vec<(String, Pod, &'static str)>,
    terminating: Vec<Terminating>,
    api_healthy: bool,
    last_haproxy_error: Option<String>,
}

impl Node {
    async fn tick(&mut self) {
        let selector = self.args.selector.clone();
        let deployments = self.list::<Deployment>(Some(&selector)).await;
        let services = self.list::<Service>(None).await;
        if let Some(services) = services {
            self.sync_services(&services);
        }
        self.write_hosts().await;
        if let Some(deployments) = deployments {
            self.sync_deployments(&deployments);
        }
        self.run_pods().await;
        self.apply_haproxy().await;
        self.stop_leaving_pods();
        self.reap_terminated();
        let status = self.status();
        if let Err(error) = status::write(&self.status_path, &status).await {
            tracing::warn!("cannot write {}: {error}", self.status_path.display());
        }
    }

    /// Lists a kind in the namespace; `None` (logged) when the API server
    /// does not answer, so the caller keeps what it knew.
    async fn list<K>(&mut self, selector: Option<&str>) -> Option<Vec<K>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.args.namespace);
        let mut params = ListParams::default();
        if let Some(selector) = selector.filter(|s| !s.is_empty()) {
            params = params.labels(selector);
        }
        let kind = K::kind(&K::DynamicType::default()).into_owned();
        let result = tokio::time::timeout(API_TIMEOUT, api.list(&params)).await;
        let error = match result {
            Ok(Ok(list)) => {
                if !self.api_healthy {
                    tracing::info!("API server reachable again");
                    self.api_healthy = true;
                }
                return Some(list.items);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {API_TIMEOUT:?}"),
        };
        // Once per outage, not once per loop.
        if self.api_healthy {
            tracing::warn!(
                "cannot list {kind}s: {error}; keeping the last known state and retrying"
            );
            self.api_healthy = false;
        } else {
            tracing::debug!("cannot list {kind}s: {error}");
        }
        None
    }

    fn sync_services(&mut self, services: &[Service]) {
        let listed: BTreeMap<&str, &Service> = services
            .iter()
            .filter(|s| {
                // ExternalName Services are DNS aliases with no address.
                s.spec.as_ref().and_then(|spec| spec.type_.as_deref()) != Some("ExternalName")
            })
            .filter_map(|s| s.metadata.name.as_deref().map(|name| (name, s)))
            .collect();
        let gone: Vec<String> = self
            .services
            .keys()
            .filter(|name| !listed.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(entry) = self.services.remove(&name) {
                self.service_ips.release(entry.ip);
                tracing::info!(service = %name, address = %entry.ip, "service removed");
            }
        }
        for (name, service) in listed {
            if let Some(entry) = self.services.get_mut(name) {
                entry.spec = service.spec.clone();
                continue;
            }
            match self.service_ips.allocate() {
                Ok(ip) => {
                    tracing::info!(service = %name, address = %ip, "service address assigned");
                    self.services.insert(
                        name.to_owned(),
                        ServiceEntry {
                            ip,
                            spec: service.spec.clone(),
                            skipped: Vec::new(),
                        },
                    );
                }
                Err(error) => {
                    tracing::warn!(service = %name, "no address for the service: {error}");
                }
            }
        }
    }

    async fn write_hosts(&mut self) {
        let entries: Vec<HostEntry> = self
            .services
            .iter()
            .map(|(name, entry)| HostEntry {
                name: name.clone(),
                ip: entry.ip,
            })
            .collect();
        let content =
            network::render_hosts(&self.args.namespace, self.args.cluster_domain(), &entries);
        if let Err(error) = self.hosts.write(&content).await {
            tracing::warn!("cannot write {}: {error}", self.hosts.path().display());
        }
    }

    /// Notices exited processes and starts every pod that is due, reading
    /// the ConfigMaps and Secrets their templates name.
    async fn run_pods(&mut self) {
        let now = Instant::now();
        let client = self.client.clone();
        for (name, state) in &mut self.deployments {
            for pod in &mut state.pods {
                pod.reap().await;
            }
            let due: Vec<usize> = (0..state.pods.len())
                .filter(|&i| state.pods[i].is_due(now))
                .collect();
            if due.is_empty() {
                continue;
            }
            let mut references = References::default();
            for &i in &due {
                let wanted = &state.pods[i].template().references;
                references
                    .config_maps
                    .extend(wanted.config_maps.iter().cloned());
                references.secrets.extend(wanted.secrets.iter().cloned());
            }
            let objects = match fetch(&client, &self.args.namespace, &references).await {
                Ok(objects) => {
                    state.fetch_error = None;
                    objects
                }
                Err(error) => {
                    let message = error.to_string();
                    if state.fetch_error.as_deref() != Some(message.as_str()) {
                        tracing::warn!(deployment = %name, "{message}; retrying");
                    }
                    state.fetch_error = Some(message);
                    continue;
                }
            };
            for i in due {
                let pod = &mut state.pods[i];
                let before = pod.start_error().map(str::to_owned);
                if let Err(error) = pod.start(&self.context, &objects, &self.prober).await {
                    let message = error.to_string();
                    // Logged when it changes; it stays in the status file.
                    if before.as_deref() != Some(message.as_str()) {
                        tracing::warn!(deployment = %name, pod = %pod.name(), "{message}");
                    }
                }
            }
        }
    }

    async fn apply_haproxy(&mut self) {
        let mut endpoints = Vec::new();
        for state in self.deployments.values() {
            for pod in &state.pods {
                let template = pod.template();
                endpoints.push(Endpoint {
                    pod: pod.name(),
                    ip: pod.ip(),
                    ready: pod.ready(),
                    labels: &template.labels,
                    ports: &template.ports,
                });
            }
        }
        let mut servers = Vec::new();
        for (name, entry) in &mut self.services {
            let plan = services::plan(name, entry.ip, entry.spec.as_ref(), &endpoints);
            if plan.skipped != entry.skipped {
                for skipped in &plan.skipped {
                    tracing::warn!(service = %name, "{skipped}");
                }
                entry.skipped = plan.skipped;
            }
            servers.extend(plan.ports);
        }
        let rendered = haproxy::render(self.maxconn, &servers);
        let frontends = servers.len();
        let backends: usize = servers.iter().map(|s| s.servers.len()).sum();
        match self.haproxy.apply(&rendered, frontends > 0).await {
            Ok(Applied::Unchanged) => {}
            Ok(Applied::Started) => tracing::info!(
                pid = self.haproxy.pid().unwrap_or_default(),
                "haproxy started: {frontends} frontends, {backends} servers"
            ),
            Ok(Applied::Reloaded) => {
                tracing::info!("haproxy reloaded: {frontends} frontends, {backends} servers");
            }
            Ok(Applied::Stopped) => tracing::info!("haproxy stopped: no Service to serve"),
            Err(error) => {
                let message = error.to_string();
                if self.last_haproxy_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!("{message}");
                }
                self.last_haproxy_error = Some(message);
                self.virtual_servers = servers;
                return;
            }
        }
        self.last_haproxy_error = None;
        self.virtual_servers = servers;
    }

    /// Signals the pods that left this loop, now that HAProxy has dropped them.
    fn stop_leaving_pods(&mut self) {
        for (deployment, pod, why) in self.to_stop.drain(..) {
            let name = pod.name().to_owned();
            let ip = pod.ip();
            match pod.stop() {
                Some(handle) => {
                    tracing::info!(%deployment, pod = %name, %ip, "stopping pod ({why})");
                    self.terminating.push(Terminating {
                        deployment,
                        pod: name,
                        ip,
                        handle,
                    });
                }
                None => self.pod_ips.release(ip),
            }
        }
    }

    fn reap_terminated(&mut self) {
        let pool = &mut self.pod_ips;
        self.terminating.retain(|t| {
            if !t.handle.is_finished() {
                return true;
            }
            pool.release(t.ip);
            tracing::info!(deployment = %t.deployment, pod = %t.pod, "pod stopped");
            false
        });
    }

    /// Stops every pod (SIGTERM, then SIGKILL after at most 10 s), then HAProxy.
    async fn shutdown(mut self) {
        let mut handles = Vec::new();
        for state in self.deployments.values_mut() {
            handles.extend(state.pods.drain(..).filter_map(Pod::stop));
        }
        handles.extend(self.to_stop.drain(..).filter_map(|(_, pod, _)| pod.stop()));
        handles.extend(self.terminating.drain(..).map(|t| t.handle));
        tracing::info!("waiting for {} pods to stop", handles.len());
        for result in futures::future::join_all(handles).await {
            if let Err(error) = result {
                tracing::warn!("a pod's supervisor failed: {error}");
            }
        }
        self.haproxy.stop().await;
        if let Err(error) = status::write(&self.status_path, &Status::default()).await {
            tracing::warn!("cannot write {}: {error}", self.status_path.display());
        }
        tracing::info!("every pod and haproxy stopped");
    }
}

/// Reads the ConfigMaps and Secrets in `references`; one missing is simply
/// absent (the resolution decides whether that is an error).
async fn fetch(
    client: &Client,
    namespace: &str,
    references: &References,
) -> Result<Objects, FetchError> {
    let mut objects = Objects::default();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in &references.config_maps {
        if let Some(map) = get(&config_maps, "configmap", name).await? {
            objects.insert_config_map(name, map.data.unwrap_or_default());
        }
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in &references.secrets {
        if let Some(secret) = get(&secrets, "secret", name).await? {
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, value.0))
                .collect();
            objects.insert_secret(name, data);
        }
    }
    Ok(objects)
}

async fn get<K>(api: &Api<K>, kind: &'static str, name: &str) -> Result<Option<K>, FetchError>
where
    K: Clone + DeserializeOwned + Debug,
{
    match tokio::time::timeout(API_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(object)) => Ok(object),
        Ok(Err(source)) => Err(FetchError::Api {
            kind,
            name: name.to_owned(),
            source,
        }),
        Err(_) => Err(FetchError::Timeout {
            kind,
            name: name.to_owned(),
        }),
    }
}
