//! The Stripe provider against stripe-mock, Stripe's own mock server
//! (`scripts/stack up` starts it; `URR_STRIPE_MOCK_URL`). stripe-mock checks
//! every request against Stripe's OpenAPI description (a parameter Stripe
//! would refuse is refused with Stripe's error body) and answers with
//! Stripe's fixtures; it keeps no state and sends no webhooks, which the
//! signature and event tests in the crate cover with deliveries signed the
//! way Stripe signs them.

use std::time::Duration;

use urr_payment::provider::stripe::{Stripe, StripeSettings};
use urr_payment::provider::{Provider, ProviderError, ProviderPayment};

fn stripe_mock_url() -> String {
    std::env::var("URR_STRIPE_MOCK_URL").unwrap_or_else(|_| {
        panic!("URR_STRIPE_MOCK_URL is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"` (scripts/test does this)")
    })
}

fn stripe(secret_key: &str) -> Stripe {
    Stripe::new(StripeSettings {
        api_base: stripe_mock_url(),
        secret_key: secret_key.to_owned(),
        webhook_secrets: vec![b"whsec_test_0123456789abcdef".to_vec()],
        tolerance_seconds: 300,
        timeout: Duration::from_secs(5),
    })
}

fn payment(amount_minor: i64, currency: &str) -> ProviderPayment {
    ProviderPayment {
        payment_id: uuid::Uuid::new_v4().to_string(),
        amount_minor,
        currency: currency.to_owned(),
        provider_ref: None,
    }
}

#[tokio::test]
async fn a_payment_is_authorized_captured_and_refunded_with_requests_stripe_accepts() {
    let stripe = stripe("sk_test_urr");
    for (amount, currency) in [(55_000, "KRW"), (1_200, "JPY"), (1_234, "USD")] {
        let mut paying = payment(amount, currency);
        let intent = stripe
            .authorize(&paying, "pm_card_visa")
            .await
            .unwrap_or_else(|e| panic!("{currency}: stripe-mock refused the authorization: {e}"));
        assert!(intent.starts_with("pi_"), "{intent}");
        paying.provider_ref = Some(intent);
        stripe
            .capture(&paying)
            .await
            .unwrap_or_else(|e| panic!("{currency}: capture refused: {e}"));
        stripe
            .refund(&paying)
            .await
            .unwrap_or_else(|e| panic!("{currency}: refund refused: {e}"));
    }
}

#[tokio::test]
async fn a_rejected_key_is_unavailable_not_a_decline() {
    // stripe-mock refuses a request without a usable key with 401, as Stripe
    // does: a configuration fault to retry and alert on, never a buyer's
    // decline (which would refund or fail the payment).
    let result = stripe("")
        .authorize(&payment(55_000, "KRW"), "pm_card_visa")
        .await;
    assert!(
        matches!(result, Err(ProviderError::Unavailable(ref detail)) if detail.contains("401")),
        "{result:?}"
    );
}

#[tokio::test]
async fn what_stripe_cannot_take_is_refused_before_it_is_sent() {
    let stripe = stripe("sk_test_urr");
    for (paying, method) in [
        (payment(55_000, "KRW"), "card-number-4242"),
        (payment(12_345, "KWD"), "pm_card_visa"),
        (payment(100, "K1W"), "pm_card_visa"),
    ] {
        assert!(
            matches!(
                stripe.authorize(&paying, method).await,
                Err(ProviderError::Refused(_))
            ),
            "{paying:?} {method}"
        );
    }
    assert!(matches!(
        stripe.capture(&payment(1, "USD")).await,
        Err(ProviderError::Refused(_))
    ));
    assert!(matches!(
        stripe.void(&payment(1, "USD")).await,
        Err(ProviderError::Refused(_))
    ));
}

#[tokio::test]
async fn an_authorization_is_voided_by_canceling_its_payment_intent() {
    let stripe = stripe("sk_test_urr");
    let mut paying = payment(55_000, "KRW");
    paying.provider_ref = Some(
        stripe
            .authorize(&paying, "pm_card_visa")
            .await
            .expect("authorized"),
    );
    stripe
        .void(&paying)
        .await
        .expect("stripe-mock accepts the cancel");
}

#[tokio::test]
async fn stripe_is_unreachable_is_unavailable() {
    let stripe = Stripe::new(StripeSettings {
        api_base: "http://127.0.0.1:9".to_owned(),
        secret_key: "sk_test_urr".to_owned(),
        webhook_secrets: Vec::new(),
        tolerance_seconds: 300,
        timeout: Duration::from_secs(2),
    });
    assert!(matches!(
        stripe.authorize(&payment(1, "USD"), "pm_card_visa").await,
        Err(ProviderError::Unavailable(_))
    ));
}

#[tokio::test]
async fn the_reconciler_can_ask_stripe_what_became_of_an_intent() {
    let stripe = stripe("sk_test_urr");
    let mut paying = payment(55_000, "KRW");
    // Without an intent there is nothing to ask.
    assert_eq!(stripe.status(&paying).await, Ok(None));
    paying.provider_ref = Some(
        stripe
            .authorize(&paying, "pm_card_visa")
            .await
            .expect("authorized"),
    );
    // stripe-mock answers with its fixture intent; whatever its status, the
    // request is one Stripe accepts and the answer one URR reads.
    stripe
        .status(&paying)
        .await
        .expect("GET /v1/payment_intents/{id} accepted");
    // A key Stripe refuses is a fault to retry, not a verdict.
    assert!(matches!(
        self::stripe("").status(&paying).await,
        Err(ProviderError::Unavailable(_))
    ));
}
