//! The ConfigMap of one service: its non-secret settings, and their hash
//! that rolls the pods when they change.

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};
use urr_crds::event::{EventSpec, JwtAlgorithm};

use super::{CONTAINER_PORT, Defaults, INTERNAL_PORT, QueueRoom, ServiceKind, internal_url};

/// The runtime settings of one service: non-secret values only, so the
/// ConfigMap can be read by anyone who can read the namespace.
pub(super) fn config_data(
    event: &str,
    spec: &EventSpec,
    service: ServiceKind,
    room: Option<&QueueRoom>,
    defaults: &Defaults,
) -> BTreeMap<String, String> {
    let endpoint = |kind: ServiceKind| format!("http://{}", kind.child_name(event));
    let sections: Vec<serde_json::Value> = spec
        .seat_map
        .sections
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name, "rows": s.rows, "seatsPerRow": s.seats_per_row, "capacity": s.capacity, "price": s.price}))
        .collect();
    let settings = json!({
        "event": event,
        "displayName": spec.display_name,
        "salesOpenAt": spec.sales_open_at.0.to_string(),
        "salesCloseAt": spec.sales_close_at.0.to_string(),
        "holdTimeoutSeconds": spec.hold_timeout_seconds,
        "limits": spec.limits,
        "seatMap": {"sections": sections},
    });
    let mut data = BTreeMap::from([
        ("URR_EVENT_ID".to_owned(), event.to_owned()),
        ("URR_SERVICE".to_owned(), service.as_str().to_owned()),
        ("URR_LISTEN".to_owned(), format!("0.0.0.0:{CONTAINER_PORT}")),
        // Explicit although it is the services' default: a local node
        // (tools/node) rewrites listen addresses it sees in the env only.
        (
            "URR_INTERNAL_LISTEN".to_owned(),
            format!("0.0.0.0:{INTERNAL_PORT}"),
        ),
        ("URR_LOG_FORMAT".to_owned(), "json".to_owned()),
        ("URR_QUEUE_URL".to_owned(), endpoint(ServiceKind::Queue)),
        // The payment service calls /internal/holds/*, which only the
        // internal listener serves.
        (
            "URR_TICKET_URL".to_owned(),
            internal_url(event, ServiceKind::Ticket),
        ),
        ("URR_PAYMENT_URL".to_owned(), endpoint(ServiceKind::Payment)),
        (
            "URR_EVENT_SETTINGS".to_owned(),
            serde_json::to_string(&settings).unwrap_or_default(),
        ),
    ]);
    if service == ServiceKind::Queue {
        let address = spec.client_address.unwrap_or(defaults.client_address);
        for (name, value) in address.service_env() {
            data.insert(name.to_owned(), value);
        }
    }
    match (service, room) {
        (ServiceKind::Queue, Some(room)) => {
            data.insert("URR_ROOM_NAME".to_owned(), room.name.clone());
            data.insert("URR_ROOM_ID".to_owned(), room.id.clone());
            if let Some((_, key_id)) = &room.signing {
                data.insert("URR_VWR_KEY_ID".to_owned(), key_id.clone());
            }
            if let Some((_, key_id)) = &room.previous_signing {
                data.insert("URR_VWR_PREVIOUS_KEY_ID".to_owned(), key_id.clone());
            }
            if let Some(ttl) = room.pass_ttl_seconds {
                data.insert("URR_VWR_TOKEN_TTL_SECONDS".to_owned(), ttl.to_string());
            }
        }
        (ServiceKind::Payment, _) => {
            // The provider posts webhooks to the Service, so any replica
            // takes them (not the pod that created the payment).
            data.insert("URR_PUBLIC_URL".to_owned(), endpoint(ServiceKind::Payment));
            // Until when buyers refund their own orders (absent: no deadline).
            if let Some(setting) = spec
                .refund_policy
                .as_ref()
                .and_then(|p| p.service_setting())
            {
                data.insert("URR_BUYER_REFUNDS_UNTIL".to_owned(), setting);
            }
            if let Some(provider) = &spec.services.payment.provider {
                data.insert(
                    "URR_PAYMENT_PROVIDER".to_owned(),
                    provider.name.service_name().to_owned(),
                );
                if let (Some(base), Some(base_env)) =
                    (&provider.api_base, provider.name.api_base_env())
                {
                    data.insert(base_env.to_owned(), base.clone());
                }
            }
        }
        _ => {}
    }
    let jwt = &spec.auth.user_jwt;
    if let (JwtAlgorithm::RS256, Some(url)) = (jwt.algorithm, &jwt.jwks_url) {
        data.insert("URR_USER_JWKS_URL".to_owned(), url.clone());
    }
    if let Some(issuer) = &jwt.issuer {
        data.insert("URR_USER_JWT_ISSUER".to_owned(), issuer.clone());
    }
    if let Some(audience) = &jwt.audience {
        data.insert("URR_USER_JWT_AUDIENCE".to_owned(), audience.clone());
    }
    data
}

pub(super) fn config_hash(data: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..12])
}
