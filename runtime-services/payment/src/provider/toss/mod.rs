//! TossPayments, over its core API (<https://docs.tosspayments.com/reference>),
//! tested against a contract fake built from that reference
//! (`tests/support/toss_fake.rs`).
//!
//! The payment-widget flow (<https://docs.tosspayments.com/guides/v2/payment-widget/integration>):
//! the buyer authorises in Toss's widget, which redirects the browser with
//! `paymentKey`, `orderId` and `amount`; the client confirms the URR
//! payment with the `paymentKey` as its `paymentMethod`. The URR payment id
//! is the `orderId` the widget was opened with, and the amount is never the
//! redirect's: URR sends its own (the ticket service's quote), so a
//! tampered redirect cannot pay less.
//!
//! How it fits URR's authorize → capture machine: Toss has no separate
//! authorization. `POST /v1/payments/confirm` approves and captures at once
//! and answers the Payment object, so [`Toss::authorize_answer`] returns a
//! *captured* verdict that the flow applies at once (created → authorized,
//! "implied by the capture" → captured), and [`Provider::capture`] has
//! nothing left to do. A refund is `POST /v1/payments/{paymentKey}/cancel`
//! (<https://docs.tosspayments.com/reference#결제-취소>), whose answer is
//! again the Payment object: `CANCELED` is the refunded verdict.
//!
//! What is never lost: every answer that is not a documented refusal
//! ([`errors`]) leaves the payment where it is, and [`Provider::status`]
//! (`GET /v1/payments/{paymentKey}`, or `GET /v1/payments/orders/{orderId}`
//! when the confirm's answer never came, so the key was never recorded)
//! tells the reconciler what became of it.
//!
//! Authentication (<https://docs.tosspayments.com/reference/using-api/authorization>):
//! HTTP Basic with the secret key as the user and no password,
//! `base64("{secretKey}:")`. Cancels carry an `Idempotency-Key`
//! (<https://docs.tosspayments.com/reference/using-api/idempotency-key>;
//! keys are scoped to the API key, URL and method, live 15 days, at most
//! 300 characters) derived from the URR payment id, so a cancel retried
//! after a timeout is answered, never done twice. A confirm carries none on
//! purpose: Toss confirms a `paymentKey` once (a second confirm answers
//! `ALREADY_PROCESSED_PAYMENT`, which URR answers by fetching the payment),
//! and without a key a confirm retried after a temporary error is tried
//! again instead of being answered the same error for 15 days.

pub mod errors;
pub mod payment;

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use self::errors::{Class, TossError};
use self::payment::Payment;
use super::{
    Accepted, MethodRefused, PartAccepted, Provider, ProviderError, ProviderPayment,
    ProviderVerdict, RefundPart, WebhookParseError, money,
};
use crate::webhook::WebhookEvent;

pub const NAME: &str = "toss";
pub const DEFAULT_API_BASE: &str = "https://api.tosspayments.com";
/// The currencies URR sends to Toss: domestic payments in won, overseas
/// ones (PayPal) in dollars.
pub const CURRENCIES: [&str; 2] = ["KRW", "USD"];
/// The `cancelReason` of a buyer's refund (Toss requires one, ≤ 200 characters).
const REFUND_REASON: &str = "refund requested through URR";

#[derive(Clone)]
pub struct TossSettings {
    pub api_base: String,
    /// `test_sk_…` / `live_sk_…`.
    pub secret_key: String,
    pub timeout: Duration,
}

urr_service_common::debug_fields!(TossSettings { api_base, timeout });

#[derive(Clone)]
pub struct Toss {
    api_base: String,
    /// `Basic base64("{secretKey}:")`, never printed.
    authorization: String,
    http: reqwest::Client,
}

urr_service_common::debug_fields!(Toss { api_base });

/// A `paymentKey` as Toss issues them (≤ 200 letters, digits, `-`, `_`):
/// what goes into a URL path, so nothing else does.
pub fn valid_payment_key(key: &str) -> bool {
    (1..=200).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        // Toss's keys always hold letters; a bare number is card data pasted
        // into the wrong field, and is refused before it is stored.
        && key.bytes().any(|b| b.is_ascii_alphabetic())
}

/// How a call failed.
#[derive(Debug)]
enum CallError {
    /// Toss answered a documented error object.
    Toss { status: u16, error: TossError },
    /// Unreachable, timed out, cut short, or an answer URR cannot read:
    /// the outcome is unknown.
    Unknown(String),
}

impl CallError {
    fn class(&self) -> Class {
        match self {
            CallError::Toss { error, .. } => errors::class_of(&error.code),
            CallError::Unknown(_) => Class::Retry,
        }
    }

    /// As a [`ProviderError`]: a refusal only for a documented decline.
    fn into_provider(self) -> ProviderError {
        let class = self.class();
        let detail = match self {
            CallError::Toss { status, error } => format!("toss {status} {error}"),
            CallError::Unknown(detail) => detail,
        };
        match class {
            Class::Declined => ProviderError::Refused(detail),
            Class::Misconfigured => {
                tracing::error!(%detail, "Toss refuses URR's credentials or contract; check URR_TOSS_SECRET_KEY");
                ProviderError::Unavailable(detail)
            }
            Class::Retry | Class::AlreadyDone => ProviderError::Unavailable(detail),
        }
    }
}

impl Toss {
    pub fn new(settings: TossSettings) -> Self {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", settings.secret_key));
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .unwrap_or_default();
        Self {
            api_base: settings.api_base.trim_end_matches('/').to_owned(),
            authorization: format!("Basic {credentials}"),
            http,
        }
    }

    /// Sends `request` with the key and reads the Payment object it answers.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Payment, CallError> {
        let response = request
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .send()
            .await
            .map_err(|e| CallError::Unknown(format!("toss unreachable: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| CallError::Unknown(format!("toss answer cut short: {e}")))?;
        if status.is_success() {
            return Payment::parse(&body).map_err(|e| CallError::Unknown(e.to_string()));
        }
        match serde_json::from_slice::<TossError>(&body) {
            Ok(error) => Err(CallError::Toss {
                status: status.as_u16(),
                error,
            }),
            Err(_) => Err(CallError::Unknown(format!(
                "toss {}: unreadable error body",
                status.as_u16()
            ))),
        }
    }

    async fn get(&self, path: &str) -> Result<Payment, CallError> {
        self.send(self.http.get(format!("{}{path}", self.api_base)))
            .await
    }

    /// `POST /v1/payments/{paymentKey}/cancel`: all of it (`amount` `None`)
    /// or part of it, once per `idempotency_key`.
    async fn cancel(
        &self,
        key: &str,
        reason: &str,
        amount: Option<String>,
        idempotency_key: &str,
    ) -> Result<Payment, CallError> {
        let mut body = json!({ "cancelReason": reason });
        if let Some(amount) = amount {
            body["cancelAmount"] = major_number(&amount)?;
        }
        self.send(
            self.http
                .post(format!("{}/v1/payments/{key}/cancel", self.api_base))
                .header("Idempotency-Key", idempotency_key)
                .json(&body),
        )
        .await
    }

    /// The payment's key: recorded, or found by its order id (the confirm's
    /// answer was lost before it was recorded).
    async fn key_of(&self, payment: &ProviderPayment) -> Result<String, CallError> {
        match &payment.provider_ref {
            Some(key) if valid_payment_key(key) => Ok(key.clone()),
            Some(_) => Err(CallError::Unknown(
                "the recorded reference is not a Toss paymentKey".into(),
            )),
            None => Ok(self.by_order(payment).await?.payment_key),
        }
    }

    async fn by_order(&self, payment: &ProviderPayment) -> Result<Payment, CallError> {
        self.get(&format!("/v1/payments/orders/{}", payment.payment_id))
            .await
    }

    /// The verdict of an answered Payment object, checked to be this payment's.
    fn answer(payment: &ProviderPayment, answered: &Payment) -> Result<Accepted, ProviderError> {
        if answered.order_id != payment.payment_id {
            return Err(ProviderError::Unavailable(format!(
                "toss answered about order {:?}, not this payment",
                answered.order_id
            )));
        }
        let verdict = answered
            .verdict()
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok(Accepted {
            reference: Some(answered.payment_key.clone()),
            verdict,
        })
    }

    /// After an "already done" answer: what the payment is now.
    async fn fetched(
        &self,
        payment: &ProviderPayment,
        key: &str,
    ) -> Result<Accepted, ProviderError> {
        let answered = self
            .get(&format!("/v1/payments/{key}"))
            .await
            .map_err(CallError::into_provider)?;
        Self::answer(payment, &answered)
    }

    /// Cancels `amount_minor` of a confirmed payment (a partial refund),
    /// once per `idempotency_key`; returns what is left of it, in minor units.
    pub async fn cancel_part(
        &self,
        payment: &ProviderPayment,
        amount_minor: i64,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<i64, ProviderError> {
        let amount = toss_amount(amount_minor, &payment.currency)?;
        let key = self
            .key_of(payment)
            .await
            .map_err(CallError::into_provider)?;
        let answered = self
            .cancel(&key, reason, Some(amount), idempotency_key)
            .await
            .map_err(CallError::into_provider)?;
        if answered.order_id != payment.payment_id {
            return Err(ProviderError::Unavailable(
                "toss answered about another order".into(),
            ));
        }
        answered
            .balance_minor()
            .map_err(|e| ProviderError::Unavailable(e.to_string()))
    }
}

/// `amount_minor` as Toss takes it, for the currencies URR sends it.
fn toss_amount(amount_minor: i64, currency: &str) -> Result<String, ProviderError> {
    if !CURRENCIES.contains(&currency) {
        return Err(ProviderError::Refused(format!(
            "Toss takes {} payments, not {currency}",
            CURRENCIES.join(" and ")
        )));
    }
    money::to_major(amount_minor, currency).map_err(|e| ProviderError::Refused(e.to_string()))
}

/// Decimal text as a JSON number (`55000`, `12.34`).
fn major_number(text: &str) -> Result<serde_json::Value, CallError> {
    text.parse::<serde_json::Number>()
        .map(serde_json::Value::Number)
        .map_err(|e| CallError::Unknown(format!("amount {text}: {e}")))
}

#[async_trait::async_trait]
impl Provider for Toss {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_method(&self, method: &str) -> Result<(), MethodRefused> {
        if valid_payment_key(method) {
            Ok(())
        } else {
            Err(MethodRefused(
                "paymentMethod must be the paymentKey Toss's widget redirected with",
            ))
        }
    }

    async fn authorize(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<String, ProviderError> {
        let accepted = self.authorize_answer(payment, method).await?;
        Ok(accepted.reference.unwrap_or_else(|| method.to_owned()))
    }

    async fn authorize_answer(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<Accepted, ProviderError> {
        if !valid_payment_key(method) {
            return Err(ProviderError::Refused(
                "a Toss paymentKey is required".into(),
            ));
        }
        let amount = toss_amount(payment.amount_minor, &payment.currency)?;
        let body = json!({
            "paymentKey": method,
            "orderId": payment.payment_id,
            "amount": major_number(&amount).map_err(CallError::into_provider)?,
        });
        let confirmed = self
            .send(
                self.http
                    .post(format!("{}/v1/payments/confirm", self.api_base))
                    .json(&body),
            )
            .await;
        match confirmed {
            Ok(answered) => Self::answer(payment, &answered),
            // Confirmed before (its answer lost), maybe under another
            // key for this order: the order says what it is now.
            Err(error) if error.class() == Class::AlreadyDone => {
                let answered = self
                    .by_order(payment)
                    .await
                    .map_err(CallError::into_provider)?;
                Self::answer(payment, &answered)
            }
            Err(error) => Err(error.into_provider()),
        }
    }

    /// Nothing to do: Toss's confirm captured already.
    async fn capture(&self, _payment: &ProviderPayment) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn refund(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        self.refund_answer(payment).await.map(|_| ())
    }

    async fn refund_answer(&self, payment: &ProviderPayment) -> Result<Accepted, ProviderError> {
        let key = self
            .key_of(payment)
            .await
            .map_err(CallError::into_provider)?;
        let canceled = self
            .cancel(
                &key,
                REFUND_REASON,
                None,
                &format!("urr-{}-refund", payment.payment_id),
            )
            .await;
        match canceled {
            Ok(answered) => Self::answer(payment, &answered),
            Err(error) if error.class() == Class::AlreadyDone => self.fetched(payment, &key).await,
            Err(error) => Err(error.into_provider()),
        }
    }

    /// `POST /v1/payments/{paymentKey}/cancel` with `cancelAmount`: Toss
    /// answers the payment with the cancel applied, so the part is settled
    /// in the answer.
    /// <https://docs.tosspayments.com/reference#%EA%B2%B0%EC%A0%9C-%EC%B7%A8%EC%86%8C>
    async fn refund_part(
        &self,
        payment: &ProviderPayment,
        part: &RefundPart,
    ) -> Result<PartAccepted, ProviderError> {
        self.cancel_part(
            payment,
            part.amount_minor,
            REFUND_REASON,
            &format!("urr-{}-refund-{}", payment.payment_id, part.id),
        )
        .await?;
        Ok(PartAccepted {
            reference: None,
            settled: true,
        })
    }

    /// Toss has no authorization to release: the confirm took the money, so
    /// releasing it is a full cancel.
    async fn void(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        let key = self
            .key_of(payment)
            .await
            .map_err(CallError::into_provider)?;
        match self
            .cancel(
                &key,
                "the buyer canceled before the confirmation",
                None,
                &format!("urr-{}-void", payment.payment_id),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.class() == Class::AlreadyDone => Ok(()),
            Err(error) => Err(error.into_provider()),
        }
    }

    async fn status(
        &self,
        payment: &ProviderPayment,
    ) -> Result<Option<ProviderVerdict>, ProviderError> {
        let found = match &payment.provider_ref {
            Some(key) if valid_payment_key(key) => self.get(&format!("/v1/payments/{key}")).await,
            _ => self.by_order(payment).await,
        };
        match found {
            Ok(answered) => Ok(Self::answer(payment, &answered)?.verdict),
            // Toss holds nothing for this order: no money moved.
            Err(CallError::Toss { status: 404, .. }) => Ok(None),
            Err(error) => Err(match error.into_provider() {
                // A refusal of a query is no verdict on the payment.
                ProviderError::Refused(detail) => ProviderError::Unavailable(detail),
                other => other,
            }),
        }
    }

    fn parse_webhook(
        &self,
        _signature: Option<&str>,
        body: &[u8],
        _now: i64,
    ) -> Result<WebhookEvent, WebhookParseError> {
        Err(payment::notice(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_keys_are_checked_before_they_reach_a_url() {
        assert!(valid_payment_key(
            "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1"
        ));
        assert!(valid_payment_key("tgen_20261203101631QgTJ9"));
        assert!(valid_payment_key("WxdQtiCTz74W3Im2a_vqD"));
        let long = "a".repeat(201);
        for bad in [
            "",
            "4242424242424242",
            "../v1/payments/other",
            "key with spaces",
            "키",
            long.as_str(),
        ] {
            assert!(!valid_payment_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn amounts_go_to_toss_in_won_or_dollars_only() {
        assert_eq!(toss_amount(55_000, "KRW").as_deref(), Ok("55000"));
        assert_eq!(toss_amount(1_234, "USD").as_deref(), Ok("12.34"));
        assert!(matches!(
            toss_amount(1_200, "JPY"),
            Err(ProviderError::Refused(_))
        ));
        assert_eq!(
            major_number("12.34").expect("number"),
            serde_json::json!(12.34)
        );
        assert_eq!(
            major_number("55000").expect("number"),
            serde_json::json!(55000)
        );
    }

    #[test]
    fn only_documented_declines_are_refusals() {
        let toss = |status: u16, code: &str| CallError::Toss {
            status,
            error: TossError {
                code: code.to_owned(),
                message: "m".to_owned(),
            },
        };
        assert!(matches!(
            toss(403, "REJECT_CARD_PAYMENT").into_provider(),
            ProviderError::Refused(_)
        ));
        for retried in [
            toss(400, "PROVIDER_ERROR"),
            toss(401, "UNAUTHORIZED_KEY"),
            toss(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
            toss(500, "A_CODE_NOBODY_DOCUMENTED"),
            CallError::Unknown("timed out".into()),
        ] {
            assert!(
                matches!(retried.into_provider(), ProviderError::Unavailable(_)),
                "must be retried"
            );
        }
    }

    #[test]
    fn the_secret_key_is_never_printed() {
        let toss = Toss::new(TossSettings {
            api_base: DEFAULT_API_BASE.to_owned(),
            secret_key: "test_sk_very_secret".to_owned(),
            timeout: Duration::from_secs(1),
        });
        let printed = format!("{toss:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(!printed.contains("Basic"), "{printed}");
        assert!(toss.authorization.starts_with("Basic "));
        let settings = TossSettings {
            api_base: DEFAULT_API_BASE.to_owned(),
            secret_key: "test_sk_very_secret".to_owned(),
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{settings:?}").contains("very_secret"));
    }
}
