use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, ResourceRequirements,
    SecretEnvSource, SecretKeySelector,
};

use super::*;

struct Fixture {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    objects: Objects,
}

impl Fixture {
    fn new() -> Self {
        let mut objects = Objects::default();
        objects.insert_config_map(
            "settings",
            BTreeMap::from([
                ("URR_LISTEN".to_owned(), "0.0.0.0:8080".to_owned()),
                ("MODE".to_owned(), "fast".to_owned()),
                ("bad=key".to_owned(), "x".to_owned()),
            ]),
        );
        objects.insert_secret(
            "auth",
            BTreeMap::from([
                ("token".to_owned(), b"s3cret".to_vec()),
                ("binary".to_owned(), vec![0xff, 0xfe]),
            ]),
        );
        Self {
            labels: BTreeMap::from([("app".to_owned(), "queue".to_owned())]),
            annotations: BTreeMap::from([("urr.dev/config-hash".to_owned(), "abc".to_owned())]),
            objects,
        }
    }

    fn pod(&self) -> PodFacts<'_> {
        PodFacts {
            name: "demo-queue-1a2b3c4d5e-0",
            namespace: "urr-demo",
            uid: "0000-uid",
            labels: &self.labels,
            annotations: &self.annotations,
            node_name: "urr-local-node",
            service_account: "default",
            pod_ip: Ipv4Addr::new(127, 0, 1, 7),
            host_ip: Ipv4Addr::LOCALHOST,
        }
    }

    fn resolve(&self, container: &Container) -> Result<Resolved, EnvError> {
        resolve(
            container,
            &self.pod(),
            &Allocatable::default(),
            &self.objects,
        )
    }

    fn env(&self, vars: Vec<EnvVar>) -> Result<Environment, EnvError> {
        let container = Container {
            name: "queue".to_owned(),
            env: Some(vars),
            ..Container::default()
        };
        self.resolve(&container).map(|r| r.env)
    }
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

fn from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(source),
        ..EnvVar::default()
    }
}

fn field(name: &str, path: &str) -> EnvVar {
    from(
        name,
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        },
    )
}

fn config_key(name: &str, map: &str, key: &str, optional: Option<bool>) -> EnvVar {
    from(
        name,
        EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: map.to_owned(),
                key: key.to_owned(),
                optional,
            }),
            ..EnvVarSource::default()
        },
    )
}

fn secret_key(name: &str, secret: &str, key: &str, optional: Option<bool>) -> EnvVar {
    from(
        name,
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional,
            }),
            ..EnvVarSource::default()
        },
    )
}

fn resource(name: &str, resource: &str, divisor: Option<&str>) -> EnvVar {
    from(
        name,
        EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                resource: resource.to_owned(),
                divisor: divisor.map(|d| KubeQuantity(d.to_owned())),
                container_name: None,
            }),
            ..EnvVarSource::default()
        },
    )
}

fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
    |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[test]
fn expansion_follows_kubernetes_rules() {
    let vars = [("A", "alpha"), ("B", "beta")];
    let expand = |input: &str| expand(input, lookup(&vars));
    assert_eq!(expand("$(A)"), "alpha");
    assert_eq!(expand("x-$(A)-$(B)-y"), "x-alpha-beta-y");
    assert_eq!(expand("$$(A)"), "$(A)", "$$ escapes the reference");
    assert_eq!(expand("$$$(A)"), "$alpha");
    assert_eq!(
        expand("$(UNKNOWN)"),
        "$(UNKNOWN)",
        "unknown stays as written"
    );
    assert_eq!(expand("$(A"), "$(A", "unterminated stays");
    assert_eq!(expand("cost $5"), "cost $5");
    assert_eq!(expand("end$"), "end$");
    assert_eq!(expand("$()"), "$()");
    assert_eq!(expand("é$(A)é"), "éalphaé");
    assert_eq!(expand("$é"), "$é");
}

#[test]
fn env_from_with_prefix_then_env_overrides_and_expands() {
    let fixture = Fixture::new();
    let container = Container {
        name: "queue".to_owned(),
        env_from: Some(vec![
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".to_owned(),
                    optional: Some(false),
                }),
                prefix: Some("CFG_".to_owned()),
                ..EnvFromSource::default()
            },
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".to_owned(),
                    optional: None,
                }),
                ..EnvFromSource::default()
            },
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "absent".to_owned(),
                    optional: Some(true),
                }),
                ..EnvFromSource::default()
            },
            EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "absent-secret".to_owned(),
                    optional: Some(true),
                }),
                ..EnvFromSource::default()
            },
        ]),
        env: Some(vec![
            value("MODE", "slow"),
            value(
                "DESCRIBE",
                "$(MODE) on $(URR_LISTEN) via $(CFG_MODE), $(LATER)",
            ),
            value("LATER", "late"),
        ]),
        ..Container::default()
    };
    let resolved = fixture.resolve(&container).expect("resolves");
    let env = &resolved.env;
    assert_eq!(env.get("CFG_MODE"), Some("fast"));
    assert_eq!(env.get("CFG_URR_LISTEN"), Some("0.0.0.0:8080"));
    assert_eq!(env.get("MODE"), Some("slow"), "env overrides envFrom");
    assert_eq!(
        env.get("DESCRIBE"),
        Some("slow on 0.0.0.0:8080 via fast, $(LATER)"),
        "only variables defined before are expanded"
    );
    assert_eq!(resolved.skipped_keys, vec!["CFG_bad=key", "bad=key"]);
    assert_eq!(env.get("bad=key"), None);
}

#[test]
fn missing_sources_fail_unless_optional() {
    let fixture = Fixture::new();
    let container = |source: EnvFromSource| Container {
        name: "queue".to_owned(),
        env_from: Some(vec![source]),
        ..Container::default()
    };
    let error = fixture
        .resolve(&container(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: "absent".to_owned(),
                optional: None,
            }),
            ..EnvFromSource::default()
        }))
        .map(|_| ())
        .expect_err("a required ConfigMap is missing");
    assert_eq!(error.to_string(), r#"configmap "absent" not found"#);
    let error = fixture
        .resolve(&container(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: "urr-auth".to_owned(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }))
        .map(|_| ())
        .expect_err("a required Secret is missing");
    assert_eq!(error.to_string(), r#"secret "urr-auth" not found"#);
}

#[test]
fn key_refs_missing_versus_optional() {
    let fixture = Fixture::new();
    let env = fixture
        .env(vec![
            config_key("MODE", "settings", "MODE", None),
            secret_key("TOKEN", "auth", "token", Some(false)),
            config_key("NO_KEY", "settings", "absent", Some(true)),
            config_key("NO_MAP", "absent", "MODE", Some(true)),
            secret_key("NO_SECRET_KEY", "auth", "absent", Some(true)),
            secret_key("NO_SECRET", "absent", "token", Some(true)),
        ])
        .expect("resolves");
    assert_eq!(env.get("MODE"), Some("fast"));
    assert_eq!(env.get("TOKEN"), Some("s3cret"));
    for name in ["NO_KEY", "NO_MAP", "NO_SECRET_KEY", "NO_SECRET"] {
        assert_eq!(env.get(name), None, "{name} stays undefined");
    }

    let cases = [
        (
            config_key("X", "settings", "absent", None),
            r#"configmap "settings" key "absent" not found"#,
        ),
        (
            config_key("X", "absent", "MODE", Some(false)),
            r#"configmap "absent" not found"#,
        ),
        (
            secret_key("X", "auth", "x", None),
            r#"secret "auth" key "x" not found"#,
        ),
        (
            secret_key("X", "urr-auth", "x", None),
            r#"secret "urr-auth" not found"#,
        ),
        (
            secret_key("X", "auth", "binary", None),
            r#"secret "auth" key "binary" is not UTF-8 text (this node passes environments as text)"#,
        ),
    ];
    for (var, message) in cases {
        let error = fixture.env(vec![var]).expect_err(message);
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn secret_values_never_show_in_debug_output() {
    let fixture = Fixture::new();
    let env = fixture
        .env(vec![secret_key("TOKEN", "auth", "token", None)])
        .expect("resolves");
    assert_eq!(env.get("TOKEN"), Some("s3cret"));
    let printed = format!("{env:?} {:?}", fixture.objects);
    assert!(printed.contains("TOKEN") && printed.contains("auth"));
    assert!(!printed.contains("s3cret"), "{printed}");
}

#[test]
fn field_refs_read_every_supported_path() {
    let fixture = Fixture::new();
    let env = fixture
        .env(vec![
            field("NAME", "metadata.name"),
            field("NAMESPACE", "metadata.namespace"),
            field("UID", "metadata.uid"),
            field("APP", "metadata.labels['app']"),
            field("NO_LABEL", "metadata.labels['absent']"),
            field("HASH", "metadata.annotations['urr.dev/config-hash']"),
            field("NODE", "spec.nodeName"),
            field("SA", "spec.serviceAccountName"),
            field("POD_IP", "status.podIP"),
            field("POD_IPS", "status.podIPs"),
            field("HOST_IP", "status.hostIP"),
            field("HOST_IPS", "status.hostIPs"),
            value("ADDR", "$(POD_IP):8080"),
        ])
        .expect("resolves");
    let expected = [
        ("NAME", "demo-queue-1a2b3c4d5e-0"),
        ("NAMESPACE", "urr-demo"),
        ("UID", "0000-uid"),
        ("APP", "queue"),
        ("NO_LABEL", ""),
        ("HASH", "abc"),
        ("NODE", "urr-local-node"),
        ("SA", "default"),
        ("POD_IP", "127.0.1.7"),
        ("POD_IPS", "127.0.1.7"),
        ("HOST_IP", "127.0.0.1"),
        ("HOST_IPS", "127.0.0.1"),
        ("ADDR", "127.0.1.7:8080"),
    ];
    for (name, value) in expected {
        assert_eq!(env.get(name), Some(value), "{name}");
    }
    let error = fixture
        .env(vec![field("X", "metadata.labels")])
        .expect_err("whole maps are not for env vars");
    assert!(matches!(error, EnvError::FieldPath { .. }), "{error}");
}

#[test]
fn resource_field_refs_divide_and_default_to_allocatable() {
    let fixture = Fixture::new();
    let vars = vec![
        resource("CPU_LIMIT", "limits.cpu", None),
        resource("CPU_LIMIT_M", "limits.cpu", Some("1m")),
        resource("MEM_LIMIT_MI", "limits.memory", Some("1Mi")),
        resource("CPU_REQUEST_M", "requests.cpu", Some("1m")),
        resource("MEM_REQUEST", "requests.memory", None),
        resource("MEM_REQUEST_MI", "requests.memory", Some("1Mi")),
    ];
    let unset = fixture.env(vars.clone()).expect("resolves");
    assert_eq!(unset.get("CPU_LIMIT"), Some("2"));
    assert_eq!(unset.get("CPU_LIMIT_M"), Some("2000"));
    assert_eq!(unset.get("MEM_LIMIT_MI"), Some("24576"));
    assert_eq!(unset.get("CPU_REQUEST_M"), Some("0"));
    assert_eq!(unset.get("MEM_REQUEST"), Some("0"));

    let quantities = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), KubeQuantity((*v).to_owned())))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let container = Container {
        name: "queue".to_owned(),
        env: Some(vars),
        resources: Some(ResourceRequirements {
            limits: quantities(&[("cpu", "1500m"), ("memory", "1Gi")]),
            requests: quantities(&[("cpu", "250m")]),
            ..ResourceRequirements::default()
        }),
        ..Container::default()
    };
    let set = fixture.resolve(&container).expect("resolves").env;
    assert_eq!(set.get("CPU_LIMIT"), Some("2"), "1.5 cores round up");
    assert_eq!(set.get("CPU_LIMIT_M"), Some("1500"));
    assert_eq!(set.get("MEM_LIMIT_MI"), Some("1024"));
    assert_eq!(set.get("CPU_REQUEST_M"), Some("250"));
    assert_eq!(
        set.get("MEM_REQUEST"),
        Some("1073741824"),
        "requests default to limits"
    );
    assert_eq!(set.get("MEM_REQUEST_MI"), Some("1024"));

    let error = fixture
        .env(vec![resource("X", "limits.ephemeral-storage", None)])
        .expect_err("unsupported resource");
    assert!(matches!(error, EnvError::Resource { .. }), "{error}");
    let error = fixture
        .env(vec![resource("X", "limits.cpu", Some("0"))])
        .expect_err("zero divisor");
    assert!(matches!(error, EnvError::ZeroDivisor { .. }), "{error}");
}

#[test]
fn references_list_what_to_fetch() {
    let container = Container {
        name: "queue".to_owned(),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: "settings".to_owned(),
                optional: None,
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(vec![
            secret_key("T", "auth", "token", None),
            config_key("M", "other", "k", None),
            value("V", "x"),
        ]),
        ..Container::default()
    };
    let refs = References::of(&container);
    assert_eq!(
        refs.config_maps.into_iter().collect::<Vec<_>>(),
        ["other", "settings"]
    );
    assert_eq!(refs.secrets.into_iter().collect::<Vec<_>>(), ["auth"]);
}
