use k8s_openapi::api::core::v1::{EnvVar, SecretKeySelector};
use urr_crds::payment_provider::PaymentProviderName;
use urr_crds::{SecretKeyRef, WaitingRoom};

use super::*;
use crate::fixtures::example_event;

#[test]
fn children_are_owned_labelled_and_named_after_the_event() {
    let event = example_event();
    for service in ServiceKind::ALL {
        let children = build(&event, service, 3, &Defaults::default(), None).expect("build");
        let name = format!("aurora-seoul-2026-{}", service.as_str());
        for meta in [
            &children.config_map.metadata,
            &children.deployment.metadata,
            &children.service.metadata,
            &children.pod_disruption_budget.metadata,
        ] {
            assert_eq!(meta.name.as_deref(), Some(name.as_str()));
            assert_eq!(meta.namespace.as_deref(), Some("urr-demo"));
            let owner = &meta.owner_references.as_ref().expect("owner")[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str(), owner.controller),
                ("Event", "aurora-seoul-2026", Some(true))
            );
            assert_eq!(
                meta.labels.as_ref().expect("labels")[EVENT_LABEL],
                "aurora-seoul-2026"
            );
        }
        let deployment = children.deployment.spec.expect("spec");
        assert_eq!(deployment.replicas, Some(3));
        let template_labels = deployment
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .expect("labels");
        for (key, value) in deployment.selector.match_labels.expect("selector") {
            assert_eq!(
                template_labels.get(&key),
                Some(&value),
                "the selector matches the pods"
            );
        }
    }
}

#[test]
fn secrets_are_references_and_the_spec_env_comes_last() {
    let event = example_event();
    let children =
        build(&event, ServiceKind::Ticket, 2, &Defaults::default(), None).expect("build");
    let pod = children
        .deployment
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod");
    let env = pod.containers[0].env.clone().expect("env");
    let by_name = |name: &str| env.iter().find(|e| e.name == name).cloned();
    for name in [
        "URR_REDIS_URL",
        "URR_DATABASE_URL",
        "URR_KAFKA_BROKERS",
        "URR_USER_JWT_SECRET",
        "URR_ENTRY_TOKEN_KEY",
        "URR_SERVICE_TOKEN",
    ] {
        let var = by_name(name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(var.value.is_none(), "{name} must not carry a value");
        assert!(
            var.value_from.and_then(|v| v.secret_key_ref).is_some(),
            "{name} comes from a Secret"
        );
    }
    let config = children.config_map.data.expect("data");
    assert!(
        config.values().all(|v| !v.contains("secret")),
        "no secret material in the ConfigMap"
    );
    // Payment's spec env is appended after ours.
    let mut event = event;
    event.spec.services.payment.env.push(EnvVar {
        name: "URR_SANDBOX_LATENCY_MS".to_owned(),
        value: Some("50".to_owned()),
        ..EnvVar::default()
    });
    let payment =
        build(&event, ServiceKind::Payment, 2, &Defaults::default(), None).expect("build");
    let payment_env = payment
        .deployment
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod")
        .containers[0]
        .env
        .clone()
        .expect("env");
    assert_eq!(
        payment_env.last().map(|e| e.name.as_str()),
        Some("URR_SANDBOX_LATENCY_MS")
    );
    assert!(
        payment_env.iter().all(|e| e.name != "URR_REDIS_URL"),
        "payment has no Redis"
    );
}

/// The names of the Secret-backed variables `service`'s pods get.
fn secret_names(service: ServiceKind) -> Vec<String> {
    let event = example_event();
    let room = QueueRoom::find([&example_room()], &event);
    let children = build(&event, service, 2, &Defaults::default(), room.as_ref()).expect("build");
    let mut names: Vec<String> = env_of(&children)
        .into_iter()
        .filter(|e| {
            e.value_from
                .as_ref()
                .is_some_and(|v| v.secret_key_ref.is_some())
        })
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

#[test]
fn with_an_origin_secret_every_service_gets_it() {
    let mut event = example_event();
    event.spec.auth.origin_secret_ref = Some(SecretKeyRef {
        name: "urr-origin".into(),
        key: "verify".into(),
    });
    for service in [
        ServiceKind::Queue,
        ServiceKind::Ticket,
        ServiceKind::Payment,
    ] {
        let children = build(&event, service, 2, &Defaults::default(), None).expect("build");
        let origin = secret_ref_of(&children, "URR_ORIGIN_SECRET")
            .unwrap_or_else(|| panic!("{service:?} has no URR_ORIGIN_SECRET"));
        assert_eq!(
            (origin.name.as_str(), origin.key.as_str()),
            ("urr-origin", "verify")
        );
    }
}

#[test]
fn the_queue_gets_only_the_secrets_it_reads() {
    assert_eq!(
        secret_names(ServiceKind::Queue),
        [
            "URR_ENTRY_TOKEN_KEY",
            "URR_REDIS_URL",
            "URR_USER_JWT_SECRET",
            "URR_VWR_SIGNING_KEY"
        ]
    );
}

#[test]
fn the_ticket_service_gets_only_the_secrets_it_reads() {
    assert_eq!(
        secret_names(ServiceKind::Ticket),
        [
            "URR_DATABASE_URL",
            "URR_ENTRY_TOKEN_KEY",
            "URR_KAFKA_BROKERS",
            "URR_REDIS_URL",
            "URR_SERVICE_TOKEN",
            "URR_USER_JWT_SECRET"
        ]
    );
}

#[test]
fn the_payment_service_gets_only_the_secrets_it_reads() {
    assert_eq!(
        secret_names(ServiceKind::Payment),
        [
            "URR_DATABASE_URL",
            "URR_KAFKA_BROKERS",
            "URR_SANDBOX_WEBHOOK_SECRET",
            "URR_SERVICE_TOKEN",
            "URR_USER_JWT_SECRET"
        ]
    );
}

fn env_of(children: &ServiceChildren) -> Vec<EnvVar> {
    children
        .deployment
        .spec
        .as_ref()
        .and_then(|d| d.template.spec.as_ref())
        .and_then(|p| p.containers[0].env.clone())
        .unwrap_or_default()
}

/// The Secret reference of the container's env var `name`, if it has one.
fn secret_ref_of(children: &ServiceChildren, name: &str) -> Option<SecretKeySelector> {
    env_of(children)
        .into_iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value_from)
        .and_then(|v| v.secret_key_ref)
}

/// The queue reads the buyer's address where the Event says, else where
/// the operator's default (the chart's ingress) says; never a header
/// nobody set.
#[test]
fn the_queue_reads_client_addresses_where_the_event_or_the_operator_says() {
    use urr_crds::client_address::ClientAddressSource;
    let queue_data = |event: &Event, defaults: &Defaults| {
        build(event, ServiceKind::Queue, 1, defaults, None)
            .expect("build")
            .config_map
            .data
            .expect("data")
    };
    let mut event = example_event();
    event.spec.client_address = None;
    let data = queue_data(&event, &Defaults::default());
    assert!(
        !data.contains_key("URR_CLIENT_IP_HEADER"),
        "peer by default"
    );
    let behind_ingress = Defaults {
        client_address: ClientAddress {
            source: ClientAddressSource::XForwardedFor,
            trusted_hops: 1,
        },
        ..Defaults::default()
    };
    let data = queue_data(&event, &behind_ingress);
    assert_eq!(data["URR_CLIENT_IP_HEADER"], "X-Forwarded-For");
    assert_eq!(data["URR_TRUSTED_PROXY_HOPS"], "1");
    event.spec.client_address = Some(ClientAddress {
        source: ClientAddressSource::CloudFrontViewerAddress,
        trusted_hops: 1,
    });
    let data = queue_data(&event, &behind_ingress);
    assert_eq!(data["URR_CLIENT_IP_HEADER"], "CloudFront-Viewer-Address");
    let ticket = build(&event, ServiceKind::Ticket, 1, &behind_ingress, None)
        .expect("build")
        .config_map
        .data
        .expect("data");
    assert!(!ticket.contains_key("URR_CLIENT_IP_HEADER"));
}

/// The Event names the provider; the payment pods get its name, its API
/// and its keys as Secret references, and no other service gets them.
#[test]
fn the_payment_provider_and_its_keys_reach_only_the_payment_pods() {
    use urr_crds::payment_provider::PaymentProvider;
    let mut event = example_event();
    let key = |key: &str| SecretKeyRef {
        name: "urr-stripe".to_owned(),
        key: key.to_owned(),
    };
    event.spec.services.payment.provider = Some(PaymentProvider {
        name: PaymentProviderName::Stripe,
        secret_key_ref: Some(key("secret-key")),
        webhook_secret_ref: Some(key("webhook-secret")),
        previous_webhook_secret_ref: Some(key("previous-webhook-secret")),
        api_base: Some("http://127.0.0.1:12111".to_owned()),
    });
    let payment =
        build(&event, ServiceKind::Payment, 2, &Defaults::default(), None).expect("build");
    let data = payment.config_map.data.clone().expect("data");
    assert_eq!(data["URR_PAYMENT_PROVIDER"], "stripe");
    assert_eq!(data["URR_STRIPE_API_BASE"], "http://127.0.0.1:12111");
    for (name, secret_key) in [
        ("URR_STRIPE_SECRET_KEY", "secret-key"),
        ("URR_STRIPE_WEBHOOK_SECRET", "webhook-secret"),
        (
            "URR_STRIPE_PREVIOUS_WEBHOOK_SECRET",
            "previous-webhook-secret",
        ),
    ] {
        let reference = secret_ref_of(&payment, name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(
            (reference.name.as_str(), reference.key.as_str()),
            ("urr-stripe", secret_key)
        );
    }
    assert!(secret_ref_of(&payment, "URR_TOSS_SECRET_KEY").is_none());
    for service in [ServiceKind::Queue, ServiceKind::Ticket] {
        let children = build(&event, service, 2, &Defaults::default(), None).expect("build");
        assert!(
            secret_ref_of(&children, "URR_STRIPE_SECRET_KEY").is_none(),
            "{service:?}"
        );
    }
}

/// Toss takes its secret key from the same reference, under its own
/// variable; the Stripe variables stay unset, and so does its API base.
#[test]
fn the_toss_key_reaches_the_payment_pods_under_its_own_name() {
    use urr_crds::payment_provider::PaymentProvider;
    let mut event = example_event();
    event.spec.services.payment.provider = Some(PaymentProvider {
        name: PaymentProviderName::Toss,
        secret_key_ref: Some(SecretKeyRef {
            name: "urr-toss".to_owned(),
            key: "secret-key".to_owned(),
        }),
        webhook_secret_ref: None,
        previous_webhook_secret_ref: None,
        api_base: Some("http://toss-fake:8080".to_owned()),
    });
    let payment =
        build(&event, ServiceKind::Payment, 2, &Defaults::default(), None).expect("build");
    let data = payment.config_map.data.clone().expect("data");
    assert_eq!(data["URR_PAYMENT_PROVIDER"], "toss");
    assert_eq!(data["URR_TOSS_API_BASE"], "http://toss-fake:8080");
    assert!(!data.contains_key("URR_STRIPE_API_BASE"));
    let reference = secret_ref_of(&payment, "URR_TOSS_SECRET_KEY").expect("the Toss key");
    assert_eq!(
        (reference.name.as_str(), reference.key.as_str()),
        ("urr-toss", "secret-key")
    );
    assert!(secret_ref_of(&payment, "URR_STRIPE_SECRET_KEY").is_none());
    for service in [ServiceKind::Queue, ServiceKind::Ticket] {
        let children = build(&event, service, 2, &Defaults::default(), None).expect("build");
        assert!(
            secret_ref_of(&children, "URR_TOSS_SECRET_KEY").is_none(),
            "{service:?}"
        );
    }
}

fn example_room() -> WaitingRoom {
    let text = include_str!("../../../examples/waitingroom.yaml");
    let mut room: WaitingRoom = serde_yaml::from_str(text).expect("example room");
    room.metadata.namespace = Some("urr-demo".to_owned());
    room
}

/// The two gaps only `urr-operator local` used to fill: the payment pods
/// get the webhook secret they refuse to start without, and the queue
/// signs passes for `<namespace>/<room>` with the room's own key, as the
/// edge entry says.
#[test]
fn the_payment_gets_its_webhook_secret_and_the_queue_its_room() {
    let event = example_event();
    let room =
        QueueRoom::find([&example_room()], &event).expect("the example room names the event");
    assert_eq!(room.id, "urr-demo/aurora-seoul-2026");

    let payment = build(
        &event,
        ServiceKind::Payment,
        2,
        &Defaults::default(),
        Some(&room),
    )
    .expect("build");
    let secret = secret_ref_of(&payment, "URR_SANDBOX_WEBHOOK_SECRET")
        .expect("the webhook secret comes from a Secret");
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("urr-auth", "payment-webhook-secret")
    );
    let data = payment.config_map.data.expect("data");
    assert_eq!(data["URR_PUBLIC_URL"], "http://aurora-seoul-2026-payment");

    let queue = build(
        &event,
        ServiceKind::Queue,
        2,
        &Defaults::default(),
        Some(&room),
    )
    .expect("build");
    let data = queue.config_map.data.clone().expect("data");
    assert_eq!(data["URR_ROOM_ID"], "urr-demo/aurora-seoul-2026");
    assert_eq!(data["URR_ROOM_NAME"], "aurora-seoul-2026");
    assert_eq!(data["URR_VWR_KEY_ID"], "2026-11");
    assert_eq!(data["URR_VWR_TOKEN_TTL_SECONDS"], "14400");
    assert!(!data.contains_key("URR_VWR_PREVIOUS_KEY_ID"));
    let mut rotating = example_room();
    if let Some(edge) = rotating.spec.edge.as_mut() {
        edge.previous_signing_key = Some(urr_crds::waiting_room::SigningKey {
            key_ref: SecretKeyRef {
                name: "urr-edge-signing".into(),
                key: "previous".into(),
            },
            id: "2026-10".into(),
        });
    }
    let rotating_room = QueueRoom::find([&rotating], &event).expect("room");
    let rotating_queue = build(
        &event,
        ServiceKind::Queue,
        2,
        &Defaults::default(),
        Some(&rotating_room),
    )
    .expect("build");
    let rotating_data = rotating_queue.config_map.data.clone().expect("data");
    assert_eq!(rotating_data["URR_VWR_PREVIOUS_KEY_ID"], "2026-10");
    let previous = secret_ref_of(&rotating_queue, "URR_VWR_PREVIOUS_SIGNING_KEY")
        .expect("the previous pass key comes from the room's Secret");
    assert_eq!(previous.key, "previous");
    let key = secret_ref_of(&queue, "URR_VWR_SIGNING_KEY")
        .expect("the pass key comes from the room's Secret");
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("urr-edge-signing", "current")
    );

    // A room of another event, or in another namespace, is not this one's.
    let mut other = example_room();
    other.metadata.namespace = Some("elsewhere".to_owned());
    assert_eq!(QueueRoom::find([&other], &event), None);
    let mut other = example_room();
    other.spec.event_ref.name = "another-event".to_owned();
    assert_eq!(QueueRoom::find([&other], &event), None);
}

#[test]
fn pods_are_locked_down() {
    let event = example_event();
    let children = build(&event, ServiceKind::Queue, 2, &Defaults::default(), None).expect("build");
    let pod = children
        .deployment
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    let security = pod.containers[0]
        .security_context
        .clone()
        .expect("security context");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some(concat!(
            "ghcr.io/urr-dev/urr-queue:",
            env!("CARGO_PKG_VERSION")
        ))
    );
}

#[test]
fn a_spec_change_changes_the_config_hash_and_nothing_else_does() {
    let event = example_event();
    let hash = |event: &Event, replicas| {
        build(
            event,
            ServiceKind::Ticket,
            replicas,
            &Defaults::default(),
            None,
        )
        .expect("build")
        .deployment
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .expect("annotations")[CONFIG_HASH_ANNOTATION]
            .clone()
    };
    let before = hash(&event, 2);
    assert_eq!(before, hash(&event, 7), "scaling does not roll pods");
    let mut changed = event.clone();
    changed.spec.hold_timeout_seconds += 60;
    assert_ne!(before, hash(&changed, 2), "a settings change rolls pods");
}

#[test]
fn the_refund_policy_reaches_the_payment_service_only() {
    let mut event = example_event();
    event.spec.refund_policy = serde_json::from_value(serde_json::json!({
        "buyerRefundsUntil": "2026-12-24T11:00:00Z"
    }))
    .expect("policy");
    let data = |event: &Event, service| {
        build(event, service, 2, &Defaults::default(), None)
            .expect("build")
            .config_map
            .data
            .expect("data")
    };
    assert_eq!(
        data(&event, ServiceKind::Payment)["URR_BUYER_REFUNDS_UNTIL"],
        "1798110000"
    );
    assert!(!data(&event, ServiceKind::Ticket).contains_key("URR_BUYER_REFUNDS_UNTIL"));
    event.spec.refund_policy =
        serde_json::from_value(serde_json::json!({"buyerRefunds": false})).expect("policy");
    assert_eq!(
        data(&event, ServiceKind::Payment)["URR_BUYER_REFUNDS_UNTIL"],
        "never"
    );
    event.spec.refund_policy = None;
    assert!(!data(&event, ServiceKind::Payment).contains_key("URR_BUYER_REFUNDS_UNTIL"));
}

#[test]
fn an_event_without_uid_cannot_own_children() {
    let mut event = example_event();
    event.metadata.uid = None;
    assert!(matches!(
        build(&event, ServiceKind::Queue, 1, &Defaults::default(), None),
        Err(BuildError::MissingMetadata("uid"))
    ));
}
