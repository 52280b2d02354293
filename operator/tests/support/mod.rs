//! Harness of the tests against the real control plane of the local stack
//! (`scripts/stack up`; `eval "$(scripts/stack env)"` exports KUBECONFIG and
//! the data stores).
//!
//! Each test gets its own Helm release of `charts/urr-operator` (RBAC and
//! service account exactly as the chart makes them), its own namespace, and
//! the real `urr-operator` binary run on this machine with the chart's
//! environment and a token of the chart's service account: so every request
//! the operator makes goes through the API server's RBAC as it would in a
//! pod. The chart's own Deployment is scaled to 0, because kwok would only
//! pretend to run it.
//!
//! Guards undo everything on drop (also when a test panics): the operator
//! processes are killed (and their logs printed on failure), the namespace
//! deleted, the release uninstalled.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;
use urr_crds::{Event, WaitingRoom};

/// Field manager of every object the tests write.
pub const TEST_MANAGER: &str = "urr-operator-tests";

/// The CRDs under test, relative to the repository root. The tests install
/// them themselves, so they test what the repository generates, not what
/// happens to be on the cluster.
pub const CRD_FILES: [&str; 2] = [
    "crds/generated/events.urr.dev.yaml",
    "crds/generated/waitingrooms.urr.dev.yaml",
];

/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(250);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A variable of the stack's environment; a clear failure without it (a
/// missing stack is a failed run, not a skipped test).
pub fn stack_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the stack and load its environment first: \
             `eval \"$(URR_STACK_DIR=/tmp/urr-dev-stack scripts/stack env)\"`"
        )
    })
}

/// Eight random hex digits, so parallel tests and repeated runs never share a name.
pub fn suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Polls `check` until it returns `Ok` or `timeout` passes; then fails with
/// `what` and the last thing `check` saw (so a failure says where it stuck).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// The admin client of the stack (set-up objects and assertions).
pub async fn admin() -> Client {
    // As the binary's main does: two rustls providers are linked in (ring,
    // aws-lc-rs), so rustls cannot pick one by itself.
    urr_service_common::install_tls_provider();
    stack_env("KUBECONFIG");
    let client = Client::try_default()
        .await
        .expect("a client from the stack's admin KUBECONFIG");
    client.apiserver_version().await.unwrap_or_else(|error| {
        panic!("the stack's API server does not answer ({error}): is `scripts/stack up` running?")
    });
    client
}

/// Applies [`CRD_FILES`] (server-side, forced, one field manager: the same
/// apply from parallel tests is idempotent) and waits until both are Established.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in CRD_FILES {
        let path = repo_root().join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a CRD: {e}", path.display()));
        let name = crd.meta().name.clone().expect("a CRD has a name");
        let mut attempt = 0;
        loop {
            attempt += 1;
            match crds
                .patch(
                    &name,
                    &PatchParams::apply(TEST_MANAGER).force(),
                    &Patch::Apply(&crd),
                )
                .await
            {
                Ok(_) => break,
                // Parallel tests apply the same object at the same moment: a
                // conflict on the stored version is retried, a refusal is not.
                Err(error) if attempt < 5 && error.to_string().contains("conflict") => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!(
                    "the API server refused the CRD {name} from {}: {error}",
                    path.display()
                ),
            }
        }
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .unwrap_or_else(|_| panic!("CRD {name} not Established within 30 s"))
            .unwrap_or_else(|e| panic!("watching CRD {name}: {e}"));
    }
}

/// Runs a command of the stack's tool set; `Err` with its output when it fails.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e} (is the stack environment loaded?)"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn kubectl(args: &[&str]) -> Result<String, String> {
    run("kubectl", args)
}

/// The helm binary the repository uses (`scripts/helm-bin`).
fn helm() -> String {
    let script = repo_root().join("scripts/helm-bin");
    let script = script.to_string_lossy();
    run(&script, &[])
        .map(|path| path.trim().to_owned())
        .unwrap_or_else(|e| panic!("no helm binary: {e}"))
}

/// A namespace of one test, deleted on drop.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub async fn create(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", suffix());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    "urr.dev/test".to_owned(),
                    "cluster".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        Self { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if let Err(error) = kubectl(&["delete", "namespace", &self.name, "--wait=false"]) {
            eprintln!("cleanup: {error}");
        }
        // The operator is gone by now (its guard drops first): a WaitingRoom
        // left with its finalizer would keep the namespace terminating forever.
        let rooms = kubectl(&[
            "-n",
            &self.name,
            "get",
            "waitingrooms.urr.dev",
            "-o",
            "name",
        ])
        .unwrap_or_default();
        for room in rooms.lines().filter(|l| !l.is_empty()) {
            let patch = r#"{"metadata":{"finalizers":null}}"#;
            if let Err(error) =
                kubectl(&["-n", &self.name, "patch", room, "--type=merge", "-p", patch])
            {
                eprintln!("cleanup: {error}");
            }
        }
    }
}

/// The Redis URL of `db` (1-15) on the stack's Redis.
pub fn redis_url(db: u8) -> String {
    format!("{}/{db}", stack_env("URR_REDIS_URL").trim_end_matches('/'))
}

/// A random Redis database of 1-15 (0 is left to interactive use).
pub fn random_db() -> u8 {
    1 + rand::random::<u8>() % 15
}

/// Value of the `current` key of the `urr-edge-signing` Secret.
pub const SIGNING_KEY: &str = "cluster-test-vwr-signing-key-of-32-bytes-or-more";

/// The Secrets the examples name. Only `redis-url` is used for real (the
/// operator writes the room's policy there); the rest reach kwok's pods,
/// which never connect anywhere.
pub async fn create_secrets(client: &Client, namespace: &str, redis_url: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let contents: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "urr-auth",
            vec![
                ("user-jwt-hs256", "cluster-test-user-jwt-key"),
                ("entry-token-key", "cluster-test-entry-token-key"),
                ("service-token", "cluster-test-service-token"),
                ("payment-webhook-secret", "cluster-test-webhook-secret"),
            ],
        ),
        (
            "urr-data",
            vec![
                ("redis-url", redis_url),
                (
                    "ticket-database-url",
                    "postgres://urr:urr@127.0.0.1:5432/ticket",
                ),
                (
                    "payment-database-url",
                    "postgres://urr:urr@127.0.0.1:5432/payment",
                ),
                ("kafka-brokers", "127.0.0.1:9092"),
            ],
        ),
        ("urr-edge-signing", vec![("current", SIGNING_KEY)]),
    ];
    for (name, data) in contents {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            string_data: Some(
                data.into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            ..Secret::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("creating Secret {name} in {namespace}: {e}"));
    }
}

/// One `helm install` of the chart, uninstalled on drop.
pub struct Release {
    pub name: String,
    /// The release namespace: the operator's own (its Lease lives here).
    pub namespace: String,
    /// The chart's Deployment (and Lease) name.
    pub fullname: String,
    /// Literal environment of the chart's operator container.
    pub chart_env: Vec<(String, String)>,
    /// A kubeconfig (0600) with a token of the chart's service account.
    pub kubeconfig: PathBuf,
    /// Scratch directory: the kubeconfig and the operators' logs.
    pub dir: PathBuf,
}

impl Release {
    pub async fn install(client: &Client) -> Self {
        let id = suffix();
        let name = format!("t{id}");
        let namespace = format!("urr-sys-{id}");
        let dir = std::env::temp_dir().join("urr-cluster-tests").join(&name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let chart = repo_root().join("charts/urr-operator");
        run(
            &helm(),
            &[
                "install",
                &name,
                &chart.to_string_lossy(),
                "-n",
                &namespace,
                "--create-namespace",
                "--skip-crds",
                "--set",
                "replicaCount=1",
            ],
        )
        .unwrap_or_else(|e| panic!("helm install: {e}"));
        // From here on, drop uninstalls.
        let mut release = Self {
            fullname: format!("{name}-urr-operator"),
            name,
            namespace,
            chart_env: Vec::new(),
            kubeconfig: dir.join("kubeconfig"),
            dir,
        };

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release.namespace);
        let deployment = deployments
            .get(&release.fullname)
            .await
            .unwrap_or_else(|e| panic!("the chart's Deployment {}: {e}", release.fullname));
        let pod = deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("the chart's Deployment has a pod template");
        let container = pod
            .containers
            .iter()
            .find(|c| c.name == "operator")
            .expect("the chart's operator container");
        // The chart's literal settings (lease name, leader election, image
        // defaults, region); the downward-API ones are given by the spawn.
        release.chart_env = container
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect();
        let service_account = pod
            .service_account_name
            .clone()
            .expect("the chart names its service account");

        deployments
            .patch(
                &release.fullname,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 0}})),
            )
            .await
            .unwrap_or_else(|e| panic!("scaling the chart's Deployment to 0: {e}"));

        let token = kubectl(&[
            "-n",
            &release.namespace,
            "create",
            "token",
            &service_account,
            "--duration=2h",
        ])
        .unwrap_or_else(|e| panic!("a token of the chart's service account: {e}"));
        write_kubeconfig(&release.kubeconfig, token.trim());
        release
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Err(error) = run(&helm(), &["uninstall", &self.name, "-n", &self.namespace]) {
            eprintln!("cleanup: {error}");
        }
        if let Err(error) = kubectl(&["delete", "namespace", &self.namespace, "--wait=false"]) {
            eprintln!("cleanup: {error}");
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A kubeconfig with the admin's API server and CA but `token` as the user.
fn write_kubeconfig(path: &Path, token: &str) {
    let admin = kube::config::Kubeconfig::read().expect("the admin KUBECONFIG parses");
    let context_name = admin
        .current_context
        .clone()
        .expect("the admin KUBECONFIG has a current context");
    let cluster_name = admin
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("the current context names a cluster");
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .expect("the admin KUBECONFIG has the current cluster");
    let server = cluster.server.expect("the cluster has a server URL");
    let ca = match (
        cluster.certificate_authority_data,
        cluster.certificate_authority,
    ) {
        (Some(data), _) => data,
        (None, Some(file)) => base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(&file).unwrap_or_else(|e| panic!("reading the CA {file}: {e}"))),
        (None, None) => panic!("the admin KUBECONFIG has no CA for {server}"),
    };
    // JSON is YAML: one serializer, no hand-built indentation.
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "urr", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "urr-operator", "user": {"token": token}}],
        "contexts": [{"name": "urr", "context": {"cluster": "urr", "user": "urr-operator"}}],
        "current-context": "urr",
    });
    // 0600: it holds a bearer token.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.write_all(config.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// A free loopback port (bound, read, released).
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// One `urr-operator run` process, killed on drop (its log printed when the
/// test failed).
pub struct Operator {
    pub identity: String,
    pub address: SocketAddr,
    child: Child,
    log: PathBuf,
    http: reqwest::Client,
}

impl Operator {
    /// Starts the binary as the chart's pod would run it, watching `namespace` only.
    pub fn spawn(release: &Release, namespace: &str, replica: &str) -> Self {
        let identity = format!("{}-{replica}", release.fullname);
        let address = free_address();
        let log = release.dir.join(format!("{identity}.log"));
        let out = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().expect("a second handle on the log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_urr-operator"));
        command
            .args(["run", "--namespace", namespace])
            .args(["--listen", &address.to_string()])
            .args(["--log-format", "text"])
            .args(["--aws-endpoint", &stack_env("URR_KVS_ENDPOINT")])
            // Only what a pod of the chart would have, not the test's environment.
            .env_clear()
            .envs(
                release
                    .chart_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .env("KUBECONFIG", &release.kubeconfig)
            .env("POD_NAMESPACE", &release.namespace)
            .env("POD_NAME", &identity)
            .env("HOME", &release.dir)
            .env("AWS_ACCESS_KEY_ID", stack_env("AWS_ACCESS_KEY_ID"))
            .env("AWS_SECRET_ACCESS_KEY", stack_env("AWS_SECRET_ACCESS_KEY"))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", env!("CARGO_BIN_EXE_urr-operator")));
        Self {
            identity,
            address,
            child,
            log,
            http: urr_service_common::http_client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test (with the log) if the process has ended.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "operator {} exited ({status}); its log:\n{}",
                self.identity,
                self.log()
            );
        }
    }

    /// Waits until `/readyz` answers 200 (the client works, leading or not).
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.assert_running();
            let last = match self.get("/readyz").await {
                Ok((200, _)) => return,
                Ok((status, body)) => format!("{status} {body}"),
                Err(error) => error,
            };
            assert!(
                Instant::now() < deadline,
                "operator {} not ready within 30 s (last: {last}); its log:\n{}",
                self.identity,
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let response = self
            .http
            .get(format!("http://{}{path}", self.address))
            .send()
            .await
            .map_err(|e| format!("GET {path} of {}: {e}", self.identity))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok((status, body))
    }

    /// `GET /leader`: 200 `leader` or 503 `standby` (metrics.rs).
    pub async fn leading(&self) -> Result<bool, String> {
        match self.get("/leader").await? {
            (200, body) if body == "leader" => Ok(true),
            (503, body) if body == "standby" => Ok(false),
            (status, body) => Err(format!("/leader of {}: {status} {body}", self.identity)),
        }
    }

    /// `urr_operator_reconciliations_total{controller, outcome}` from `/metrics`
    /// (0 before the first one: the series does not exist yet).
    pub async fn reconciliations(&self, controller: &str, outcome: &str) -> Result<u64, String> {
        let (status, body) = self.get("/metrics").await?;
        if status != 200 {
            return Err(format!("/metrics of {}: {status}", self.identity));
        }
        let controller = format!("controller=\"{controller}\"");
        let outcome = format!("outcome=\"{outcome}\"");
        let line = body.lines().find(|line| {
            line.starts_with("urr_operator_reconciliations_total{")
                && line.contains(&controller)
                && line.contains(&outcome)
        });
        match line {
            None => Ok(0),
            Some(line) => line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                // A counter of whole reconciles, printed as a float.
                .map(|v| v as u64)
                .ok_or_else(|| format!("unreadable metric line {line:?}")),
        }
    }

    /// `kill -9`: no chance to release anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- log of operator {} ----\n{}---- end of log of {} ----",
                self.identity,
                self.log(),
                self.identity
            );
        }
    }
}

/// CloudFront's control plane on the stack's emulator (where stores are created).
async fn cloudfront() -> aws_sdk_cloudfront::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let config = aws_sdk_cloudfront::config::Builder::from(&shared)
        .endpoint_url(stack_env("URR_KVS_ENDPOINT"))
        .build();
    aws_sdk_cloudfront::Client::from_conf(config)
}

/// The ARN of the KeyValueStore `name` in the emulator, created when missing.
pub async fn ensure_store(name: &str) -> String {
    let client = cloudfront().await;
    match client.create_key_value_store().name(name).send().await {
        Ok(created) => created
            .key_value_store()
            .map(|store| store.arn().to_owned())
            .unwrap_or_else(|| panic!("creating store {name}: no store in the answer")),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_entity_already_exists()) =>
        {
            client
                .describe_key_value_store()
                .name(name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("describing store {name}: {e:?}"))
                .key_value_store()
                .map(|store| store.arn().to_owned())
                .unwrap_or_else(|| panic!("describing store {name}: no store in the answer"))
        }
        Err(error) => panic!("creating store {name} in the emulator: {error:?}"),
    }
}

/// Removes the store `name` from the emulator (a test's throwaway store).
pub async fn delete_store(name: &str) {
    let client = cloudfront().await;
    let described = client
        .describe_key_value_store()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describing store {name}: {e:?}"));
    let etag = described.e_tag().unwrap_or_default().to_owned();
    client
        .delete_key_value_store()
        .name(name)
        .if_match(etag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("deleting store {name}: {e:?}"));
}

/// An example manifest of the repository, as text.
pub fn example(file: &str) -> String {
    let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub fn at(second: i64) -> Time {
    Time(Timestamp::from_second(second).expect("a representable time"))
}

/// `examples/event.yaml` named `name`, its sale opening at `open` (Unix
/// seconds) for a week: the example's own dates are absolute and would turn
/// the phase under test into a matter of the calendar.
pub fn example_event(name: &str, open: i64) -> Event {
    let mut event: Event = serde_yaml::from_str(&example("event.yaml")).expect("the example Event");
    event.metadata.name = Some(name.to_owned());
    event.spec.sales_open_at = at(open);
    event.spec.sales_close_at = at(open + 7 * 24 * 3600);
    event
}

/// `examples/waitingroom.yaml` named `name`, for the Event of the same name.
pub fn example_room(name: &str) -> WaitingRoom {
    let mut room: WaitingRoom =
        serde_yaml::from_str(&example("waitingroom.yaml")).expect("the example WaitingRoom");
    room.metadata.name = Some(name.to_owned());
    room.spec.event_ref.name = name.to_owned();
    room
}

/// The room's status as the API server has it now.
pub async fn room_status(
    rooms: &Api<WaitingRoom>,
    name: &str,
) -> Result<urr_crds::waiting_room::WaitingRoomStatus, String> {
    Ok(rooms
        .get(name)
        .await
        .map_err(|e| e.to_string())?
        .status
        .unwrap_or_default())
}

/// The room's condition `type_` now, or why there is none yet.
pub async fn room_condition(
    rooms: &Api<WaitingRoom>,
    name: &str,
    type_: &str,
) -> Result<Condition, String> {
    let status = room_status(rooms, name).await?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
        .ok_or_else(|| format!("no {type_} yet: {:?}", status.conditions))
}

/// Ten days ahead: far before any pre-warm (the example's longest lead is 30 min).
pub fn far_future() -> i64 {
    Timestamp::now().as_second() + 10 * 24 * 3600
}
