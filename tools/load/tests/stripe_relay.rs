//! urr-stripe-relay in front of the stack's real stripe-mock
//! (`URR_STRIPE_MOCK_URL`), driven by the payment service's own Stripe
//! client: each call's answer comes from stripe-mock, each intent gets an id
//! of its own, and the events Stripe would send arrive signed, verified and
//! parsed by the payment service's own Stripe webhook code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use urr_load::stripe_relay::{APPROVED_METHOD, DECLINED_METHOD, Relay, RelaySettings};
use urr_payment::provider::stripe::{Stripe, StripeSettings, signature};
use urr_payment::provider::{Provider, ProviderPayment};
use urr_payment::webhook::{WebhookEvent, WebhookKind};

const WHSEC: &[u8] = b"whsec_relay_test_0123456789";

type Received = Arc<Mutex<Vec<WebhookEvent>>>;

/// The payment service's webhook endpoint, reduced to the provider's own check and parse.
async fn endpoint(
    State((stripe, received)): State<(Arc<Stripe>, Received)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    match stripe.parse_webhook(header, &body, urr_service_common::unix_now()) {
        Ok(event) => {
            received
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(event);
            axum::http::StatusCode::OK
        }
        Err(error) => panic!("the relay's event did not verify: {error}"),
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

fn stripe(api_base: &str) -> Stripe {
    Stripe::new(StripeSettings {
        api_base: api_base.to_owned(),
        secret_key: "sk_test_relay".to_owned(),
        webhook_secrets: vec![WHSEC.to_vec()],
        tolerance_seconds: 300,
        timeout: Duration::from_secs(5),
    })
}

async fn wait_for(received: &Received, count: usize) -> Vec<WebhookEvent> {
    for _ in 0..200 {
        let events = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {count} events arrived");
}

#[tokio::test]
async fn a_payments_life_on_stripe_mock_arrives_as_stripes_events() {
    let mock = std::env::var("URR_STRIPE_MOCK_URL").unwrap_or_else(|_| {
        panic!("URR_STRIPE_MOCK_URL is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"`")
    });
    let received: Received = Arc::default();
    let webhook_url = serve(
        axum::Router::new()
            .route("/v1/webhooks/stripe", post(endpoint))
            .with_state((Arc::new(stripe("http://unused")), received.clone())),
    )
    .await;
    let relay = Relay::new(RelaySettings {
        upstream: mock,
        webhook_url: format!("{webhook_url}/v1/webhooks/stripe"),
        webhook_secret: WHSEC.to_vec(),
        event_delay: Duration::from_millis(5),
    })
    .expect("relay");
    let client = stripe(&serve(relay.router()).await);

    let payment = |id: &str| ProviderPayment {
        payment_id: id.to_owned(),
        amount_minor: 198_000,
        currency: "KRW".to_owned(),
        provider_ref: None,
    };
    // Authorized, then captured, then refunded.
    let mut paid = payment("pay-1");
    let intent = client
        .authorize(&paid, APPROVED_METHOD)
        .await
        .expect("authorize");
    assert!(intent.starts_with("pi_relay"), "{intent}");
    // A retried authorize (same idempotency key) is the same intent.
    assert_eq!(
        client
            .authorize(&paid, APPROVED_METHOD)
            .await
            .expect("again"),
        intent
    );
    let events = wait_for(&received, 1).await;
    assert_eq!(events[0].kind, WebhookKind::PaymentAuthorized);
    assert_eq!(events[0].payment_id, "pay-1");
    assert_eq!(events[0].amount_minor, 198_000);
    paid.provider_ref = Some(intent.clone());
    client.capture(&paid).await.expect("capture");
    let events = wait_for(&received, 2).await;
    assert_eq!(events[1].kind, WebhookKind::PaymentCaptured);
    // The reconciler's question gets the intent's state, not the fixture's.
    let verdict = client
        .status(&paid)
        .await
        .expect("status")
        .expect("a verdict");
    assert_eq!(verdict.kind, WebhookKind::PaymentCaptured);
    client.refund(&paid).await.expect("refund");
    let events = wait_for(&received, 3).await;
    assert_eq!(events[2].kind, WebhookKind::PaymentRefunded);
    assert_eq!(events[2].payment_id, "pay-1");

    // A declined card fails with its reason; a second intent has its own id.
    let declined = payment("pay-2");
    let second = client
        .authorize(&declined, DECLINED_METHOD)
        .await
        .expect("authorize");
    assert_ne!(second, intent);
    let events = wait_for(&received, 4).await;
    assert_eq!(events[3].kind, WebhookKind::PaymentFailed);
    assert_eq!(events[3].payment_id, "pay-2");

    let figures = relay.figures();
    assert_eq!(figures.events_sent, 4, "{figures:?}");
    assert_eq!(figures.idempotent_replays, 1, "{figures:?}");
    assert_eq!(figures.deliveries_abandoned, 0, "{figures:?}");
}
