//! The two listeners of the ticket service: the payment service's
//! `/internal/holds/*`, the operator's `/internal/stats` and `/metrics` are
//! served on the internal one only; on the public one (what the load
//! balancer reaches) they are `not-found` problems, even with the service
//! token.

mod support;

use serde_json::json;
use sqlx::PgPool;
use support::{SERVICE_TOKEN, settings, start, unique_event};

#[sqlx::test(migrations = false)]
async fn internal_routes_are_served_on_the_internal_listener_only(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let hold = service
        .hold("alice", json!({"seats": ["a:1:1"]}), None)
        .await;
    assert_eq!(hold.status, 201, "{hold:?}");
    let hold = hold.body["holdId"].as_str().expect("id").to_owned();

    let quote = format!("/internal/holds/{hold}");
    let confirm = format!("/internal/holds/{hold}/confirm");
    for path in [quote.as_str(), "/internal/stats", "/metrics"] {
        let public = service
            .raw(
                service
                    .http
                    .get(format!("{}{path}", service.base))
                    .bearer_auth(SERVICE_TOKEN),
            )
            .await;
        assert_eq!(public.status, 404, "public {path}: {public:?}");
        assert_eq!(public.content_type, "application/problem+json", "{path}");
        assert_eq!(public.problem_type(), "https://urr.dev/problems/not-found");
    }
    let public_confirm = service
        .raw(
            service
                .http
                .post(format!("{}{confirm}", service.base))
                .bearer_auth(SERVICE_TOKEN)
                .json(&json!({"paymentId": "p-1", "amountMinor": 1, "currency": "KRW"})),
        )
        .await;
    assert_eq!(public_confirm.status, 404, "{public_confirm:?}");
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE status = 'sold'")
            .await,
        0,
        "a confirm on the public port sold nothing"
    );

    let internal_quote = service
        .raw(
            service
                .http
                .get(format!("{}{quote}", service.internal_base))
                .bearer_auth(SERVICE_TOKEN),
        )
        .await;
    assert_eq!(internal_quote.status, 200, "{internal_quote:?}");
    let stats = service.get_internal("/internal/stats").await;
    assert_eq!(stats.status, 200, "{stats:?}");
    assert_eq!(stats.body["held"], 1, "{stats:?}");
    assert!(
        service.metrics().await.contains("urr_ticket_"),
        "/metrics on the internal listener"
    );
    // The API stays on the public listener; the probes are on both.
    let api = format!("/v1/events/{}", service.event);
    assert_eq!(service.get(&api, None).await.status, 200);
    assert_eq!(service.get_internal(&api).await.status, 404);
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(service.get(probe, None).await.status, 200, "{probe}");
        assert_eq!(service.get_internal(probe).await.status, 200, "{probe}");
    }
    // Each request's duration, by declared route, on both listeners.
    let metrics = service.metrics().await;
    for series in [
        r#"urr_ticket_http_request_duration_seconds_count{method="GET",route="/v1/events/{event}",status="2xx"}"#,
        r#"urr_ticket_http_request_duration_seconds_count{method="POST",route="/v1/events/{event}/holds",status="2xx"}"#,
        r#"urr_ticket_http_request_duration_seconds_count{method="GET",route="/internal/holds/{hold}",status="2xx"}"#,
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}
