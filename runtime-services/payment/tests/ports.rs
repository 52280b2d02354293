//! The payment service's two listeners: `/metrics` only on the internal
//! one, the API only on the public one, the probes on both.

mod support;

use std::time::Duration;

use sqlx::PgPool;
use support::Platform;
use urr_payment::ticket_client::ClientSettings;

async fn status(platform: &Platform, base: &str, path: &str) -> (u16, String, String) {
    let response = platform
        .http
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

#[sqlx::test(migrations = false)]
async fn metrics_are_served_on_the_internal_listener_only(pool: PgPool) {
    let platform = Platform::start(pool, ClientSettings::default(), Duration::ZERO).await;
    let (public, internal) = (
        platform.payment_base.clone(),
        platform.payment_internal_base.clone(),
    );
    let (code, content_type, body) = status(&platform, &public, "/metrics").await;
    assert_eq!(code, 404, "public /metrics: {body}");
    assert_eq!(content_type, "application/problem+json");
    assert!(
        body.contains("https://urr.dev/problems/not-found"),
        "{body}"
    );
    let (code, _, body) = status(&platform, &internal, "/metrics").await;
    assert_eq!(code, 200, "internal /metrics: {body}");
    assert!(body.contains("urr_payment_"), "{body}");
    // A buyer's route is not on the internal listener: 404, not 401.
    assert_eq!(status(&platform, &internal, "/v1/payments/x").await.0, 404);
    assert_eq!(status(&platform, &public, "/v1/payments/x").await.0, 401);
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(status(&platform, &public, probe).await.0, 200, "{probe}");
        assert_eq!(status(&platform, &internal, probe).await.0, 200, "{probe}");
    }
}
