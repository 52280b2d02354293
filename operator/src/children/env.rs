//! The environment of a service's container: Secrets by reference only, and
//! only those its config reads.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use urr_crds::SecretKeyRef;
use urr_crds::event::{EventSpec, ServiceRuntime};
use urr_crds::payment_provider::PaymentProviderName;

use super::{QueueRoom, ServiceKind};

fn secret_env(name: &str, reference: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: reference.name.clone(),
                key: reference.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Secrets reach the pod as `valueFrom.secretKeyRef` only; their values never
/// pass through the operator. The spec's own `env` comes last and wins.
pub(super) fn env(
    spec: &EventSpec,
    service: ServiceKind,
    runtime: &ServiceRuntime,
    room: Option<&QueueRoom>,
) -> Vec<EnvVar> {
    let connections = &runtime.connections;
    let signing_key = match (service, room) {
        (
            ServiceKind::Queue,
            Some(QueueRoom {
                signing: Some((key, _)),
                ..
            }),
        ) => Some(key),
        _ => None,
    };
    let previous_signing_key = match (service, room) {
        (ServiceKind::Queue, Some(room)) => room.previous_signing.as_ref().map(|(key, _)| key),
        _ => None,
    };
    let webhook_secret =
        (service == ServiceKind::Payment).then_some(&spec.auth.payment_webhook_secret_ref);
    let provider = spec
        .services
        .payment
        .provider
        .as_ref()
        .filter(|_| service == ServiceKind::Payment);
    let mut env: Vec<EnvVar> = [
        ("URR_REDIS_URL", connections.redis_url_ref.as_ref()),
        ("URR_DATABASE_URL", connections.database_url_ref.as_ref()),
        ("URR_KAFKA_BROKERS", connections.kafka_brokers_ref.as_ref()),
        (
            "URR_USER_JWT_SECRET",
            spec.auth.user_jwt.secret_ref.as_ref(),
        ),
        ("URR_ENTRY_TOKEN_KEY", Some(&spec.auth.entry_token_key_ref)),
        ("URR_SERVICE_TOKEN", Some(&spec.auth.service_token_ref)),
        ("URR_VWR_SIGNING_KEY", signing_key),
        ("URR_VWR_PREVIOUS_SIGNING_KEY", previous_signing_key),
        ("URR_ORIGIN_SECRET", spec.auth.origin_secret_ref.as_ref()),
        ("URR_SANDBOX_WEBHOOK_SECRET", webhook_secret),
        (
            "URR_STRIPE_SECRET_KEY",
            provider
                .filter(|p| p.name == PaymentProviderName::Stripe)
                .and_then(|p| p.secret_key_ref.as_ref()),
        ),
        (
            "URR_TOSS_SECRET_KEY",
            provider
                .filter(|p| p.name == PaymentProviderName::Toss)
                .and_then(|p| p.secret_key_ref.as_ref()),
        ),
        (
            "URR_STRIPE_WEBHOOK_SECRET",
            provider.and_then(|p| p.webhook_secret_ref.as_ref()),
        ),
        (
            "URR_STRIPE_PREVIOUS_WEBHOOK_SECRET",
            provider.and_then(|p| p.previous_webhook_secret_ref.as_ref()),
        ),
    ]
    .into_iter()
    .filter(|(name, _)| secrets_read_by(service).contains(name))
    .filter_map(|(name, reference)| reference.map(|r| secret_env(name, r)))
    .collect();
    env.extend(runtime.env.iter().cloned());
    env
}

/// The secret variables each service's config (`runtime-services/*/src/config.rs`)
/// reads: a pod gets no other. The internet-facing queue must not hold the
/// service token that confirms holds, nor payment the entry-token key.
fn secrets_read_by(service: ServiceKind) -> &'static [&'static str] {
    match service {
        ServiceKind::Queue => &[
            "URR_REDIS_URL",
            "URR_USER_JWT_SECRET",
            "URR_ENTRY_TOKEN_KEY",
            "URR_VWR_SIGNING_KEY",
            "URR_VWR_PREVIOUS_SIGNING_KEY",
            "URR_ORIGIN_SECRET",
        ],
        ServiceKind::Ticket => &[
            "URR_REDIS_URL",
            "URR_DATABASE_URL",
            "URR_KAFKA_BROKERS",
            "URR_USER_JWT_SECRET",
            "URR_ENTRY_TOKEN_KEY",
            "URR_SERVICE_TOKEN",
            "URR_ORIGIN_SECRET",
        ],
        ServiceKind::Payment => &[
            "URR_DATABASE_URL",
            "URR_KAFKA_BROKERS",
            "URR_USER_JWT_SECRET",
            "URR_SERVICE_TOKEN",
            "URR_SANDBOX_WEBHOOK_SECRET",
            "URR_STRIPE_SECRET_KEY",
            "URR_STRIPE_WEBHOOK_SECRET",
            "URR_STRIPE_PREVIOUS_WEBHOOK_SECRET",
            "URR_TOSS_SECRET_KEY",
            "URR_ORIGIN_SECRET",
        ],
    }
}
