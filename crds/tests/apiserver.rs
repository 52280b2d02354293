//! The generated CRDs and the examples against a real Kubernetes API server:
//! the one in `KUBECONFIG` (the stack's:
//! `eval "$(URR_STACK_DIR=/tmp/urr-dev-stack scripts/stack env)"`, which also
//! puts `kubectl` on `PATH`). Without one these tests fail; they never skip,
//! because a green run must mean the CRDs were installed and exercised.
//!
//! * The CRDs in `crds/generated/` are installed the way a person installs
//!   them (`kubectl apply --server-side`), and the API server must store
//!   exactly what `crdgen` generates.
//! * Every `examples/invalid/*.yaml` is server-side applied (dry run) in a
//!   namespace of this run and must be refused with each message its
//!   `# expect:` / `# expect-server-only:` header declares, at the declared
//!   path, and with exactly the errors the offline checker
//!   (`urr_crds::manifest`) predicts.
//! * `examples/event.yaml` and `examples/waitingroom.yaml` must be accepted,
//!   and `kubectl get urr` must list them under the CRDs' printer columns.
//!
//! Parallel tests (and other runs on the same cluster) install the same CRDs:
//! the install is a forced server-side apply by one field manager, so it is
//! idempotent. Each test deletes its namespace when it ends, failed or not.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use urr_crds::manifest::check_object;

/// Field manager of everything these tests write.
const MANAGER: &str = "urr-crds-test";

/// How long a changed CRD may take to reach the API server's request
/// handlers: Established is already true for an updated CRD, so the first
/// answers may still come from the previous schema. Checks are retried until
/// this has passed, then fail.
const PROPAGATION: Duration = Duration::from_secs(20);

/// The admin client of the cluster in `KUBECONFIG`.
async fn client() -> Client {
    // kube links rustls with ring here, and the workspace links aws-lc-rs as
    // well, so rustls cannot pick a provider by itself. Err only means one is
    // installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(kubeconfig) = std::env::var_os("KUBECONFIG") else {
        panic!(
            "KUBECONFIG is not set: these tests run against a real API server. Load the \
             stack's environment first: `eval \"$(URR_STACK_DIR=/tmp/urr-dev-stack scripts/stack env)\"`"
        );
    };
    let shown = PathBuf::from(kubeconfig).display().to_string();
    let client = Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("no client from KUBECONFIG={shown}: {e}"));
    client.apiserver_version().await.unwrap_or_else(|e| {
        panic!(
            "the API server of KUBECONFIG={shown} does not answer ({e}): is the stack up (`scripts/stack up`)?"
        )
    });
    client
}

/// Runs the `kubectl` on `PATH`; `Err` with everything it printed when it fails.
fn kubectl(args: &[&str]) -> Result<String, String> {
    let output = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run kubectl: {e} (the stack's environment puts it on PATH)")
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Installs `crds/generated/` with `kubectl apply --server-side`, waits until
/// both CRDs are Established, and checks the API server stores what `crdgen`
/// generates.
///
/// kubectl rather than the Rust client: kubectl reads YAML 1.1 (as Helm
/// does), serde_yaml YAML 1.2, so only kubectl catches a file that means
/// something else to the tools people install it with (an unquoted `Off` is
/// the boolean `false` to them).
async fn install_crds(client: &Client) {
    let dir = repo_root().join(urr_crds::generate::GENERATED_DIR);
    let dir = dir.to_string_lossy();
    let args = [
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        MANAGER,
        "-f",
        &dir,
    ];
    let mut attempt = 0;
    loop {
        attempt += 1;
        match kubectl(&args) {
            Ok(_) => break,
            // Parallel tests apply the same objects at the same moment: a
            // write that lost the race on the stored version is retried, a
            // refusal is not.
            Err(error) if attempt < 5 && error.contains("the object has been modified") => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("the API server refused the generated CRDs:\n{error}"),
        }
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for generated in urr_crds::all_crds() {
        let name = generated.metadata.name.clone().expect("a CRD has a name");
        let deadline = Instant::now() + Duration::from_secs(30);
        let stored = loop {
            let stored = crds
                .get(&name)
                .await
                .unwrap_or_else(|e| panic!("cannot read back CRD {name}: {e}"));
            let established = stored
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break stored;
            }
            assert!(
                Instant::now() < deadline,
                "CRD {name} not Established within 30 s: {:?}",
                stored.status
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let want = serde_json::to_value(&generated.spec.versions).expect("versions as JSON");
        let have = serde_json::to_value(&stored.spec.versions).expect("versions as JSON");
        if let Some(difference) = first_difference(&want, &have, "spec.versions") {
            panic!(
                "the API server stores a different {name} than crdgen generates, at {difference}: \
                 kubectl read crds/generated/{name}.yaml differently (YAML 1.1), or another run \
                 installed other CRDs meanwhile"
            );
        }
    }
}

/// The first place where `have` differs from `want`, with both values.
fn first_difference(want: &Value, have: &Value, path: &str) -> Option<String> {
    match (want, have) {
        (Value::Object(want), Value::Object(have)) => {
            let keys: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
            keys.into_iter().find_map(|key| {
                first_difference(
                    want.get(key).unwrap_or(&Value::Null),
                    have.get(key).unwrap_or(&Value::Null),
                    &format!("{path}.{key}"),
                )
            })
        }
        (Value::Array(want_items), Value::Array(have_items))
            if want_items.len() == have_items.len() =>
        {
            want_items
                .iter()
                .zip(have_items)
                .enumerate()
                .find_map(|(index, (w, h))| first_difference(w, h, &format!("{path}[{index}]")))
        }
        (want, have) if want == have => None,
        (want, have) => Some(format!("{path}: generated {want}, stored {have}")),
    }
}

/// A namespace of one test; deleted when the test ends, passed or panicked.
struct TestNamespace {
    name: String,
}

impl TestNamespace {
    async fn create(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", suffix());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("urr.dev/test".to_owned(), "crds".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
        Self { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Synchronous (Drop cannot await), and without waiting for the
        // namespace's finalizers: the API server deletes what is inside.
        if let Err(error) = kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]) {
            eprintln!("could not delete test namespace {}: {error}", self.name);
        }
    }
}

/// Eight random hex digits, so parallel tests and repeated runs never share a
/// namespace. `RandomState` is seeded randomly per process.
fn suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let hash = std::collections::hash_map::RandomState::new().hash_one(nanos);
    format!("{:08x}", hash as u32)
}

/// An example manifest as JSON, placed in `namespace`.
fn read_example(path: &Path, namespace: &str) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut object: Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not one YAML document: {e}", path.display()));
    object["metadata"]["namespace"] = namespace.into();
    object
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .expect("an example has a name")
        .to_owned()
}

/// The API of the object's kind (Event or WaitingRoom) in `namespace`.
fn api_for(client: &Client, namespace: &str, object: &Value) -> Api<DynamicObject> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let crd = urr_crds::all_crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("{kind:?} is not a URR kind"));
    let gvk = GroupVersionKind::gvk(urr_crds::GROUP, urr_crds::VERSION, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Server-side apply, with strict field validation as kubectl does it.
async fn apply(
    client: &Client,
    namespace: &str,
    object: &Value,
    dry_run: bool,
) -> Result<DynamicObject, kube::Error> {
    let mut params = PatchParams::apply(MANAGER).validation_strict();
    if dry_run {
        params = params.dry_run();
    }
    api_for(client, namespace, object)
        .patch(&name_of(object), &params, &Patch::Apply(object))
        .await
}

/// `(path, message)` of every `# expect:` and `# expect-server-only:` line.
fn expectations(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("readable example");
    let expected: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            line.strip_prefix("# expect: ")
                .or_else(|| line.strip_prefix("# expect-server-only: "))
        })
        .map(|rest| {
            let (field, message) = rest
                .split_once(": ")
                .expect("an expect line is `path: message`");
            (field.to_owned(), message.to_owned())
        })
        .collect();
    assert!(
        !expected.is_empty(),
        "{}: an invalid example must say what it expects",
        path.display()
    );
    expected
}

/// Why the API server's answer to an invalid example is not what its header
/// declares (and the offline checker predicts); `Ok` when it is.
fn judge(
    object: &Value,
    expected: &[(String, String)],
    answer: Result<DynamicObject, kube::Error>,
) -> Result<(), String> {
    let status = match answer {
        Ok(_) => {
            return Err(format!(
                "the API server ACCEPTED it; its header expects a refusal: {expected:?}"
            ));
        }
        Err(kube::Error::Api(status)) => status,
        Err(other) => return Err(format!("no answer from the API server: {other}")),
    };
    let said = &status.message;
    // Validation errors come with one cause per field; server-side apply's
    // conversion errors (unknown fields, repeated list keys) only as text.
    let causes = status
        .details
        .as_ref()
        .map(|details| details.causes.as_slice())
        .unwrap_or_default();
    let mut problems = Vec::new();
    for (path, message) in expected {
        if !said.contains(message.as_str()) {
            problems.push(format!("no `{message}` in its message"));
            continue;
        }
        let at_path = if causes.is_empty() {
            said.contains(&format!("{path}: "))
        } else {
            causes
                .iter()
                .any(|c| c.field == *path && c.message.contains(message.as_str()))
        };
        if !at_path {
            problems.push(format!("`{message}` is not reported at `{path}`"));
        }
    }
    let offline: BTreeSet<(String, String)> = check_object(object)
        .server
        .into_iter()
        .map(|v| (v.path, v.message))
        .collect();
    if causes.is_empty() {
        for (path, message) in &offline {
            if !(said.contains(path.as_str()) && said.contains(message.as_str())) {
                problems.push(format!(
                    "the offline checker predicts `{path}: {message}`, which the API server did not say"
                ));
            }
        }
    } else {
        let wanted: BTreeSet<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
        let refused: BTreeSet<&str> = causes
            .iter()
            .map(|c| c.field.as_str())
            .filter(|f| *f != "<nil>")
            .collect();
        if refused != wanted {
            problems.push(format!(
                "it refuses the fields {refused:?}; the header declares {wanted:?}"
            ));
        }
        // The API server's `<nil>` (a note that it skipped the CEL rules) is
        // the offline checker's empty path.
        let server: BTreeSet<(String, String)> = causes
            .iter()
            .map(|c| {
                let field = if c.field == "<nil>" { "" } else { &c.field };
                (field.to_owned(), c.message.clone())
            })
            .collect();
        if server != offline {
            problems.push(format!(
                "the offline checker (urr_crds::manifest) predicts other errors:\n    API server: {server:?}\n    offline:    {offline:?}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    the API server said: {said}",
            problems.join("\n    ")
        ))
    }
}

#[tokio::test]
async fn invalid_examples_are_refused_by_the_api_server_as_their_headers_declare() {
    let client = client().await;
    install_crds(&client).await;
    let namespace = TestNamespace::create(&client, "urr-crds-invalid").await;
    let files = yaml_files(&repo_root().join("examples/invalid"));
    assert!(
        files.len() >= 10,
        "found only {} invalid examples",
        files.len()
    );

    let deadline = Instant::now() + PROPAGATION;
    let mut pending = files.clone();
    let failures = loop {
        let mut failures = Vec::new();
        for file in &pending {
            let object = read_example(file, &namespace.name);
            let answer = apply(&client, &namespace.name, &object, true).await;
            if let Err(why) = judge(&object, &expectations(file), answer) {
                failures.push((file.clone(), why));
            }
        }
        if failures.is_empty() || Instant::now() >= deadline {
            break failures;
        }
        pending = failures.into_iter().map(|(file, _)| file).collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let report: Vec<String> = failures
        .iter()
        .map(|(file, why)| format!("{}:\n    {why}", file.display()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} invalid examples were not refused as declared:\n{}",
        failures.len(),
        files.len(),
        report.join("\n")
    );
}

#[tokio::test]
async fn good_examples_are_accepted_and_listed_with_the_printer_columns() {
    let client = client().await;
    install_crds(&client).await;
    let namespace = TestNamespace::create(&client, "urr-crds-good").await;
    let root = repo_root();
    let event = read_example(&root.join("examples/event.yaml"), &namespace.name);
    let room = read_example(&root.join("examples/waitingroom.yaml"), &namespace.name);

    // Real applies (not dry runs), so `kubectl get` has something to list.
    // The Secrets they name need not exist: the API server does not look.
    for object in [&event, &room] {
        let deadline = Instant::now() + PROPAGATION;
        loop {
            match apply(&client, &namespace.name, object, false).await {
                Ok(_) => break,
                Err(error) if Instant::now() >= deadline => panic!(
                    "the API server refused {}/{}, a good example: {error}",
                    object["kind"].as_str().unwrap_or_default(),
                    name_of(object)
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    // Every activation mode is accepted. `Off` is the one YAML 1.1 readers
    // (kubectl, Helm) turned into the boolean `false` in an unquoted CRD
    // enum, refusing `mode: Off`.
    for mode in ["Always", "Scheduled", "Auto", "Off"] {
        let mut variant = room.clone();
        variant["metadata"]["name"] = format!("mode-{}", mode.to_lowercase()).into();
        variant["spec"]["activation"]["mode"] = mode.into();
        variant["spec"]["activation"]["auto"] = serde_json::json!({"queueDepthAbove": 1000});
        if let Err(error) = apply(&client, &namespace.name, &variant, true).await {
            panic!("the API server refused a WaitingRoom with mode {mode}: {error}");
        }
    }

    // Discovery learns a new CRD's category a moment after it is Established
    // (and kubectl caches discovery): on a fresh API server the first `get
    // urr` can answer "no resource type", so it is asked again for a while.
    let mut listing = kubectl(&["get", "urr", "-n", &namespace.name]);
    for _ in 0..30 {
        if listing.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        listing = kubectl(&["get", "urr", "-n", &namespace.name]);
    }
    let listing = listing.unwrap_or_else(|e| panic!("kubectl get urr: {e}"));
    for (crd, object) in urr_crds::all_crds().iter().zip([&event, &room]) {
        let kind = &crd.spec.names.kind;
        let mut headers = vec!["NAME".to_owned()];
        headers.extend(
            crd.spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.to_uppercase()),
        );
        let table = table_of(&listing, &headers).unwrap_or_else(|| {
            panic!(
                "`kubectl get urr` shows no {kind} table with the columns {headers:?}:\n{listing}"
            )
        });
        let name = name_of(object);
        let row = table
            .iter()
            .find(|row| {
                let cell = &row[0];
                cell == &name || cell.ends_with(&format!("/{name}"))
            })
            .unwrap_or_else(|| panic!("`kubectl get urr` lists no {kind} {name}:\n{listing}"));
        // Columns read from the spec prove their jsonPaths resolve.
        if kind == "WaitingRoom" {
            let event_name = object["spec"]["eventRef"]["name"]
                .as_str()
                .unwrap_or_default();
            let mode = object["spec"]["activation"]["mode"]
                .as_str()
                .unwrap_or_default();
            assert_eq!(row[1], event_name, "EVENT column:\n{listing}");
            assert_eq!(row[2], mode, "MODE column:\n{listing}");
        }
    }
}

/// The rows of the table in `listing` whose header is exactly `headers`, each
/// row cut into cells at the header's column offsets (kubectl aligns cells
/// under their headers; empty cells stay empty).
fn table_of(listing: &str, headers: &[String]) -> Option<Vec<Vec<String>>> {
    let mut lines = listing.lines();
    let header = lines.find(|line| {
        line.split_whitespace().collect::<Vec<_>>()
            == headers.iter().map(String::as_str).collect::<Vec<_>>()
    })?;
    let mut offsets = Vec::new();
    let mut from = 0;
    for name in headers {
        let at = from + header[from..].find(name.as_str())?;
        offsets.push(at);
        from = at + name.len();
    }
    let rows = lines
        .take_while(|line| !line.trim().is_empty())
        .map(|line| {
            offsets
                .iter()
                .enumerate()
                .map(|(index, &start)| {
                    let end = offsets.get(index + 1).copied().unwrap_or(line.len());
                    line.get(start.min(line.len())..end.min(line.len()))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .collect()
        })
        .collect();
    Some(rows)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The repository root at run time (cargo sets CARGO_MANIFEST_DIR for test
/// binaries): a compile-time path would point into whichever clone built a
/// binary that cargo reuses from a shared target directory.
fn repo_root() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("..")
}
