//! The payment flow: intents, the provider's webhooks and the dual-path
//! confirmation (refunds are in [`crate::refunds`]).
//!
//! On capture, the payment's new state and a `payment-events` message are
//! committed in one transaction (the outbox); then the ticket service is
//! called synchronously. If that call fails, the relay's Kafka message makes
//! the ticket service confirm anyway, and the reconciler retries the call:
//! whichever path arrives first confirms, the other finds it done.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use urr_service_common::contracts::{
    CancelRequest, ConfirmRequest, HoldQuote, HoldStatus, PAYMENT_EVENT_V1, PAYMENT_EVENTS,
    PaymentEvent, PaymentEventKind,
};
use urr_service_common::unix_now_ms;

use crate::error::PaymentError;
use crate::provider::{ProviderError, ProviderPayment, Providers, WebhookParseError};
use crate::state::{PaymentStatus, TransitionError, transition};
use crate::telemetry::PaymentMetrics;
use crate::ticket_client::{TicketAnswer, TicketClient, TicketRequest, valid_hold_id};
use crate::webhook::{WebhookEvent, WebhookKind};

/// A payment as its owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub payment_id: String,
    pub event: String,
    pub hold_id: String,
    pub user_id: String,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: String,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// While a verdict or the tickets are on their way: when to read the
    /// payment again. Absent once nothing more will happen by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_after_ms: Option<u64>,
    /// How much of `amount_minor` has been given back (refunds in parts).
    pub refunded_minor: i64,
    /// The refunds of some tickets, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<crate::refund_parts::RefundPartView>,
    pub transitions: Vec<TransitionView>,
}

/// How often a buyer's page should read a payment that is still moving.
/// The server says so, as the queue does with its `pollAfterMs`: a crowd
/// of checkout pages polling every 100 ms (what the load generator did)
/// spent the payment service on reads, and creating and capturing payments
/// took seconds (issue 24).
pub const POLL_AFTER_MS: u64 = 500;

/// [`PaymentView::poll_after_ms`]: a confirmed payment awaiting the
/// provider's verdict, or a capture awaiting its tickets.
pub fn poll_after_ms(status: PaymentStatus, confirmed: bool, ticketed: bool) -> Option<u64> {
    match status {
        PaymentStatus::Created if confirmed => Some(POLL_AFTER_MS),
        PaymentStatus::Authorized => Some(POLL_AFTER_MS),
        PaymentStatus::Captured if !ticketed => Some(2 * POLL_AFTER_MS),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TransitionView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    pub at_ms: i64,
}

/// What a webhook delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookOutcome {
    Applied,
    Duplicate,
    /// Arrived after the payment had moved on (out of order): harmless.
    Stale,
    /// A capture for a payment that had failed or was canceled: the money
    /// is refunded, never kept without a ticket.
    LateCapture,
    /// An authorization for a payment the buyer canceled meanwhile: voided
    /// at the provider, never captured.
    LateAuthorization,
    UnknownPayment,
    /// A genuine delivery of nothing URR acts on (another event type).
    Ignored,
}

impl WebhookOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Stale => "stale",
            WebhookOutcome::LateCapture => "late-capture",
            WebhookOutcome::LateAuthorization => "late-authorization",
            WebhookOutcome::UnknownPayment => "unknown-payment",
            WebhookOutcome::Ignored => "ignored",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Payments {
    pub pool: PgPool,
    pub ticket: TicketClient,
    pub providers: Providers,
    pub provider: &'static str,
    pub event: String,
    pub metrics: Arc<PaymentMetrics>,
    /// Until when buyers may refund ([`crate::refund_policy`]).
    pub buyer_refunds: crate::refund_policy::BuyerRefunds,
}

pub(crate) struct Row_ {
    pub(crate) id: uuid::Uuid,
    pub(crate) hold: String,
    pub(crate) user: String,
    pub(crate) status: PaymentStatus,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) provider: String,
    pub(crate) provider_ref: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) traceparent: Option<String>,
    pub(crate) confirm_started_at: Option<DateTime<Utc>>,
    /// Set on a failed or canceled payment too when a capture reached it
    /// anyway: the money is owed back until it is refunded.
    pub(crate) captured_at: Option<DateTime<Utc>>,
    /// Set while a refund of a captured payment is owed (see
    /// [`crate::refunds`]): the reconciler finishes it.
    pub(crate) refund_requested_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, hold_id, user_id, status, amount_minor, currency, provider, provider_ref, payment_method, traceparent, confirm_started_at, captured_at, refund_requested_at";

fn read_row(row: &sqlx::postgres::PgRow) -> Result<Row_, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Row_ {
        id: row.try_get("id")?,
        hold: row.try_get("hold_id")?,
        user: row.try_get("user_id")?,
        status: PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Failed),
        amount: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        provider: row.try_get("provider")?,
        provider_ref: row.try_get("provider_ref")?,
        method: row.try_get("payment_method")?,
        traceparent: row.try_get("traceparent")?,
        confirm_started_at: row.try_get("confirm_started_at")?,
        captured_at: row.try_get("captured_at")?,
        refund_requested_at: row.try_get("refund_requested_at")?,
    })
}

impl Row_ {
    pub(crate) fn provider_payment(&self) -> ProviderPayment {
        ProviderPayment {
            payment_id: self.id.to_string(),
            amount_minor: self.amount,
            currency: self.currency.clone(),
            provider_ref: self.provider_ref.clone(),
        }
    }
}

/// HTTP status of a newly created payment (and of its replays).
const CREATED_STATUS: u16 = 201;

/// A payment found by its idempotency key: id, request fingerprint, the
/// stored answer's status and body.
type StoredKey = (
    uuid::Uuid,
    Option<String>,
    Option<i16>,
    Option<serde_json::Value>,
);

/// What `create` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateAnswer {
    /// A new payment (HTTP 201).
    Created(Box<PaymentView>),
    /// A retry with the same `Idempotency-Key`: the first answer, verbatim.
    Replayed {
        status: u16,
        body: serde_json::Value,
    },
}

/// A payment with its history, read on `conn` (inside a transaction, it sees
/// that transaction's writes).
async fn view_on(
    conn: &mut PgConnection,
    user: &str,
    id: uuid::Uuid,
) -> Result<PaymentView, PaymentError> {
    let row = sqlx::query(
        "SELECT id, event_id, hold_id, user_id, status, amount_minor, currency, provider, payment_method,
                reservation_id, failure_reason, refunded_minor
         FROM payments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(PaymentError::UnknownPayment)?;
    let owner: String = row.try_get("user_id")?;
    // Someone else's payment reads as unknown.
    if owner != user {
        return Err(PaymentError::UnknownPayment);
    }
    let transitions = sqlx::query(
        "SELECT from_status, to_status, reason, at FROM payment_transitions WHERE payment_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|t| {
        Ok(TransitionView {
            from: t.try_get("from_status")?,
            to: t.try_get("to_status")?,
            reason: t.try_get("reason")?,
            at_ms: t.try_get::<DateTime<Utc>, _>("at")?.timestamp_millis(),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let status: String = row.try_get("status")?;
    let status = PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Failed);
    let payment_method: Option<String> = row.try_get("payment_method")?;
    let reservation_id: Option<String> = row.try_get("reservation_id")?;
    Ok(PaymentView {
        payment_id: id.to_string(),
        event: row.try_get("event_id")?,
        hold_id: row.try_get("hold_id")?,
        user_id: owner,
        status,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        provider: row.try_get("provider")?,
        poll_after_ms: poll_after_ms(status, payment_method.is_some(), reservation_id.is_some()),
        payment_method,
        reservation_id,
        failure_reason: row.try_get("failure_reason")?,
        refunded_minor: row.try_get("refunded_minor")?,
        refunds: crate::refund_parts::parts_of(conn, id).await?,
        transitions,
    })
}

/// `Ok(true)`: this exact confirm already happened (a retry); `Ok(false)`:
/// it may start; otherwise the payment is past the point of confirming.
fn confirm_is_repeat(row: &Row_, method: &str) -> Result<bool, PaymentError> {
    match (&row.status, &row.method) {
        (PaymentStatus::Created, None) => Ok(false),
        (_, Some(existing)) if existing == method => Ok(true),
        (status, existing) => Err(crate::state::InvalidTransition {
            from: status.as_str().to_owned(),
            to: if existing.is_some() {
                "confirmed with another method"
            } else {
                "confirmed"
            },
        }
        .into()),
    }
}

/// Fills a payment's reservation id, once: the first path to report it wins
/// and a later report (the other path, a redelivery) changes nothing.
pub async fn record_reservation_on(
    conn: &mut PgConnection,
    payment: uuid::Uuid,
    reservation: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET reservation_id = $2 WHERE id = $1 AND reservation_id IS NULL")
        .bind(payment)
        .bind(reservation)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) fn parse_id(id: &str) -> Result<uuid::Uuid, PaymentError> {
    uuid::Uuid::parse_str(id).map_err(|_| PaymentError::UnknownPayment)
}

pub(crate) async fn load(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    lock: bool,
) -> Result<Option<Row_>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|row| read_row(&row))
        .transpose()
}

impl Payments {
    fn record(&self, to: PaymentStatus) {
        self.metrics.entered(to.as_str());
    }

    pub(crate) async fn move_to(
        &self,
        conn: &mut PgConnection,
        id: uuid::Uuid,
        to: PaymentStatus,
        reason: &str,
    ) -> Result<PaymentStatus, TransitionError> {
        let from = transition(conn, id, to, reason).await?;
        self.record(to);
        Ok(from)
    }

    /// `POST /v1/payments`: a payment intent for a hold, priced by the ticket
    /// service. With an idempotency key `(key, request fingerprint)`, the
    /// first answer is stored in the same transaction as the payment and a
    /// retry gets it back verbatim; the same key with another request is refused.
    pub async fn create(
        &self,
        user: &str,
        hold: &str,
        idempotency: Option<(&str, &str)>,
        traceparent: &str,
    ) -> Result<CreateAnswer, PaymentError> {
        if !valid_hold_id(hold) {
            return Err(PaymentError::BadRequest(
                "holdId must be 1 to 100 letters, digits, '-' or '_'".into(),
            ));
        }
        if let Some((key, hash)) = idempotency
            && let Some(replay) = self.by_idempotency_key(user, key, hash).await?
        {
            return Ok(replay);
        }
        let quote = self.current_quote(user, hold, traceparent).await?;
        let id = uuid::Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO payments (id, event_id, hold_id, user_id, amount_minor, currency, status, provider,
                                   idempotency_key, request_hash, traceparent)
             VALUES ($1, $2, $3, $4, $5, $6, 'created', $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(&self.event)
        .bind(hold)
        .bind(user)
        .bind(quote.amount_minor)
        .bind(&quote.currency)
        .bind(self.provider)
        .bind(idempotency.map(|(key, _)| key))
        .bind(idempotency.map(|(_, hash)| hash))
        .bind(traceparent)
        .execute(&mut *tx)
        .await;
        if let Err(sqlx::Error::Database(error)) = &inserted
            && error.is_unique_violation()
        {
            drop(tx);
            // A concurrent retry with the same key won the race (we waited
            // on its index entry until it committed): its answer is ours.
            if let Some((key, hash)) = idempotency
                && let Some(replay) = self.by_idempotency_key(user, key, hash).await?
            {
                return Ok(replay);
            }
            return Err(PaymentError::PaymentExists);
        }
        inserted?;
        sqlx::query(
            "INSERT INTO payment_transitions (payment_id, from_status, to_status, reason) VALUES ($1, NULL, 'created', $2)",
        )
        .bind(id)
        .bind(format!("intent for hold {hold}, amount from the ticket service's quote"))
        .execute(&mut *tx)
        .await?;
        let view = view_on(&mut tx, user, id).await?;
        if idempotency.is_some() {
            let body = serde_json::to_value(&view).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            sqlx::query(
                "UPDATE payments SET idempotent_status = $2, idempotent_body = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(CREATED_STATUS as i16)
            .bind(body)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.record(PaymentStatus::Created);
        Ok(CreateAnswer::Created(Box::new(view)))
    }

    /// The ticket service's quote of `hold`, checked: it must be the
    /// caller's, of this event, and active.
    async fn current_quote(
        &self,
        user: &str,
        hold: &str,
        traceparent: &str,
    ) -> Result<HoldQuote, PaymentError> {
        let quote = self
            .ticket
            .quote(hold, Some(&urr_service_common::trace::child(traceparent)))
            .await
            .map_err(|e| PaymentError::TicketUnavailable(e.to_string()))?;
        let quote = self.active_quote_of(quote, user, hold)?;
        if quote.amount_minor < 0 || quote.currency.is_empty() {
            return Err(PaymentError::TicketUnavailable(format!(
                "unusable quote: {} {:?}",
                quote.amount_minor, quote.currency
            )));
        }
        Ok(quote)
    }

    /// The quote, if it is of `user`'s `hold` in this event and still
    /// active. Someone else's hold reads as unknown: no probing of other
    /// buyers' holds.
    fn active_quote_of(
        &self,
        quote: Option<HoldQuote>,
        user: &str,
        hold: &str,
    ) -> Result<HoldQuote, PaymentError> {
        let quote = quote.ok_or(PaymentError::UnknownHold)?;
        if quote.user_id != user || quote.event != self.event || quote.hold_id != hold {
            return Err(PaymentError::UnknownHold);
        }
        if quote.status != HoldStatus::Active {
            return Err(PaymentError::HoldNotActive(
                quote.status.as_str().to_owned(),
            ));
        }
        Ok(quote)
    }

    async fn by_idempotency_key(
        &self,
        user: &str,
        key: &str,
        hash: &str,
    ) -> Result<Option<CreateAnswer>, PaymentError> {
        let found: Option<StoredKey> = sqlx::query_as(
            "SELECT id, request_hash, idempotent_status, idempotent_body
                 FROM payments WHERE user_id = $1 AND idempotency_key = $2",
        )
        .bind(user)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match found {
            None => Ok(None),
            Some((_, stored, _, _)) if stored.as_deref() != Some(hash) => {
                Err(PaymentError::IdempotencyMismatch)
            }
            Some((_, _, Some(status), Some(body))) => Ok(Some(CreateAnswer::Replayed {
                status: u16::try_from(status).unwrap_or(CREATED_STATUS),
                body,
            })),
            // Created before answers were stored: the current view, as created.
            Some((id, _, _, _)) => {
                let view = self.view(user, &id.to_string()).await?;
                let body = serde_json::to_value(&view)
                    .map_err(|e| PaymentError::Database(sqlx::Error::Encode(Box::new(e))))?;
                Ok(Some(CreateAnswer::Replayed {
                    status: CREATED_STATUS,
                    body,
                }))
            }
        }
    }

    /// A payment with its history, for its owner.
    pub async fn view(&self, user: &str, id: &str) -> Result<PaymentView, PaymentError> {
        let id = parse_id(id)?;
        view_on(&mut *self.pool.acquire().await?, user, id).await
    }

    /// `POST /v1/payments/{id}/confirm`: the buyer's method goes to the
    /// provider; the verdict comes by webhook. Repeating it with the same
    /// method is harmless.
    pub async fn confirm(
        &self,
        user: &str,
        id: &str,
        method: &str,
    ) -> Result<PaymentView, PaymentError> {
        // The provider new payments go to says what its methods look like
        // (a `pm_…` token, Toss's paymentKey): never card data.
        if let Some(provider) = self.providers.get(self.provider) {
            provider
                .check_method(method)
                .map_err(|e| PaymentError::BadRequest(e.to_string()))?;
        }
        let id = parse_id(id)?;
        let seen = load(&mut *self.pool.acquire().await?, id, false)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        if seen.user != user {
            return Err(PaymentError::UnknownPayment);
        }
        if confirm_is_repeat(&seen, method)? {
            return self.view(user, &id.to_string()).await;
        }
        self.recheck_quote(&seen).await?;
        let mut tx = self.pool.begin().await?;
        let row = load(&mut tx, id, true)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        // Checked again under the row lock: a concurrent confirm may have won.
        if confirm_is_repeat(&row, method)? {
            drop(tx);
            return self.view(user, &id.to_string()).await;
        }
        sqlx::query("UPDATE payments SET payment_method = $2, confirm_started_at = now(), updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(method)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.authorize(&row, method).await?;
        self.view(user, &id.to_string()).await
    }

    /// Asks the ticket service again right before money moves: a hold that
    /// lapsed or was repriced since the intent must not be charged (and then
    /// refunded). The payment is canceled, since it can never succeed. If
    /// the ticket service is unreachable the charge goes ahead: the confirm
    /// after capture is checked by the ticket service too, and a refusal
    /// there refunds.
    async fn recheck_quote(&self, row: &Row_) -> Result<(), PaymentError> {
        let traceparent = row
            .traceparent
            .as_deref()
            .map(urr_service_common::trace::child);
        let quote = match self.ticket.quote(&row.hold, traceparent.as_deref()).await {
            Err(error) => {
                tracing::warn!(%error, payment = %row.id, "cannot re-check the quote; the ticket service checks again at confirm");
                return Ok(());
            }
            Ok(quote) => quote,
        };
        let refused = match self.active_quote_of(quote, &row.user, &row.hold) {
            Err(refused) => refused,
            Ok(quote) if quote.amount_minor != row.amount || quote.currency != row.currency => {
                PaymentError::AmountMismatch(format!(
                    "the hold is now {} {}, this payment is for {} {}; create a new payment",
                    quote.amount_minor, quote.currency, row.amount, row.currency
                ))
            }
            Ok(_) => return Ok(()),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE payments SET failure_reason = $2 WHERE id = $1")
            .bind(row.id)
            .bind(refused.to_string())
            .execute(&mut *tx)
            .await?;
        match self
            .move_to(
                &mut tx,
                row.id,
                PaymentStatus::Canceled,
                &format!("before the charge: {refused}"),
            )
            .await
        {
            // Already moved on (a concurrent confirm): the refusal still stands.
            Ok(_) | Err(TransitionError::Invalid(_)) => {}
            Err(error) => return Err(error.into()),
        }
        tx.commit().await?;
        Err(refused)
    }

    pub(crate) async fn authorize(&self, row: &Row_, method: &str) -> Result<(), PaymentError> {
        let provider = self
            .providers
            .get(&row.provider)
            .ok_or_else(|| PaymentError::UnknownProvider(row.provider.clone()))?;
        match provider
            .authorize_answer(&row.provider_payment(), method)
            .await
        {
            Ok(accepted) => {
                if let Some(reference) = &accepted.reference {
                    sqlx::query(
                        "UPDATE payments SET provider_ref = $2 WHERE id = $1 AND provider_ref IS NULL",
                    )
                    .bind(row.id)
                    .bind(reference)
                    .execute(&self.pool)
                    .await?;
                }
                // Toss's confirm answers the capture itself: applied now,
                // as its webhook would be.
                if let Some(verdict) = accepted.verdict {
                    self.apply_verdict(row, accepted.reference, verdict).await?;
                }
                Ok(())
            }
            Err(ProviderError::Refused(reason)) => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE payments SET failure_reason = $2 WHERE id = $1")
                    .bind(row.id)
                    .bind(&reason)
                    .execute(&mut *tx)
                    .await?;
                self.move_to(
                    &mut tx,
                    row.id,
                    PaymentStatus::Failed,
                    &format!("provider refused: {reason}"),
                )
                .await?;
                tx.commit().await?;
                Err(PaymentError::ProviderRefused(reason))
            }
            Err(ProviderError::Unavailable(reason)) => {
                Err(PaymentError::ProviderUnavailable(reason))
            }
        }
    }

    /// `POST /v1/payments/{id}/cancel`: before authorization only. Once the
    /// provider authorized, its capture follows on its own; canceling then
    /// would free the hold's live-payment slot and drop the capture.
    pub async fn cancel(&self, user: &str, id: &str) -> Result<PaymentView, PaymentError> {
        let id = parse_id(id)?;
        let mut tx = self.pool.begin().await?;
        let row = load(&mut tx, id, true)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        if row.user != user {
            return Err(PaymentError::UnknownPayment);
        }
        if row.status == PaymentStatus::Authorized {
            return Err(PaymentError::CancelTooLate);
        }
        self.move_to(
            &mut tx,
            id,
            PaymentStatus::Canceled,
            "canceled by the buyer",
        )
        .await?;
        tx.commit().await?;
        self.view(user, &id.to_string()).await
    }

    /// `POST /v1/webhooks/{provider}`: a signed verdict from the provider.
    pub async fn webhook(
        &self,
        provider_name: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookOutcome, PaymentError> {
        let provider = self
            .providers
            .get(provider_name)
            .ok_or_else(|| PaymentError::UnknownProvider(provider_name.to_owned()))?;
        let event = match provider.parse_webhook(signature, body, urr_service_common::unix_now()) {
            Ok(event) => event,
            Err(WebhookParseError::Signature(error)) => {
                self.metrics.webhook("bad-signature");
                return Err(PaymentError::WebhookSignature(error));
            }
            Err(WebhookParseError::Body(error)) => return Err(PaymentError::BadRequest(error)),
            Err(WebhookParseError::Ignored(why)) => {
                tracing::debug!(provider = provider_name, %why, "webhook acknowledged, nothing to apply");
                self.metrics.webhook(WebhookOutcome::Ignored.as_str());
                return Ok(WebhookOutcome::Ignored);
            }
            Err(WebhookParseError::AskProvider { payment_id }) => {
                let outcome = self.settle_notice(provider_name, &payment_id).await?;
                self.metrics.webhook(outcome.as_str());
                return Ok(outcome);
            }
        };
        let outcome = self.apply_webhook(provider_name, &event).await?;
        self.metrics.webhook(outcome.as_str());
        Ok(outcome)
    }

    /// Boxed, not `async fn`: what it starts after its commit (a capture's
    /// confirmation, a late capture's refund) can apply a provider's answer
    /// through it again, and that recursion must be a known `Send` future.
    pub(crate) fn apply_webhook<'a>(
        &'a self,
        provider: &'a str,
        event: &'a WebhookEvent,
    ) -> futures::future::BoxFuture<'a, Result<WebhookOutcome, PaymentError>> {
        Box::pin(async move {
            let Ok(id) = uuid::Uuid::parse_str(&event.payment_id) else {
                return Ok(WebhookOutcome::UnknownPayment);
            };
            let mut tx = self.pool.begin().await?;
            let fresh = sqlx::query(
            "INSERT INTO webhook_events (provider, provider_event_id, payment_id, kind, outcome)
             VALUES ($1, $2, $3, $4, 'received') ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(&event.id)
        .bind(id)
        .bind(format!("{:?}", event.kind))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
            if !fresh {
                return Ok(WebhookOutcome::Duplicate);
            }
            let Some(row) = load(&mut tx, id, true).await? else {
                tx.commit().await?;
                return Ok(WebhookOutcome::UnknownPayment);
            };
            // A refund of less than the payment confirms a part of it
            // ([`crate::refund_parts`]), never the whole.
            if event.kind == WebhookKind::PaymentRefunded
                && row.status == PaymentStatus::Captured
                && event.currency == row.currency
                && (0..row.amount).contains(&event.amount_minor)
            {
                let outcome = if self.settle_part_by_webhook(&mut tx, &row, event).await? {
                    WebhookOutcome::Applied
                } else {
                    WebhookOutcome::Stale
                };
                sqlx::query(
                    "UPDATE webhook_events SET outcome = $3 WHERE provider = $1 AND provider_event_id = $2",
                )
                .bind(provider)
                .bind(&event.id)
                .bind(outcome.as_str())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(outcome);
            }
            if event.amount_minor != row.amount || event.currency != row.currency {
                // Not recorded: a forged or corrupted verdict must not even
                // consume the event id.
                return Err(PaymentError::AmountMismatch(format!(
                    "the provider reports {} {}, the payment is {} {}",
                    event.amount_minor, event.currency, row.amount, row.currency
                )));
            }
            // A verdict for a payment whose authorization answer was lost (a
            // timeout after the provider took it) carries the reference the
            // refund will need.
            if row.provider_ref.is_none() && !event.provider_ref.is_empty() {
                sqlx::query(
                    "UPDATE payments SET provider_ref = $2 WHERE id = $1 AND provider_ref IS NULL",
                )
                .bind(id)
                .bind(&event.provider_ref)
                .execute(&mut *tx)
                .await?;
            }
            let mut after_commit = AfterCommit::Nothing;
            let applied = match event.kind {
                // The buyer canceled while the provider was answering: the
                // authorization must not be left holding the buyer's funds.
                WebhookKind::PaymentAuthorized if row.status == PaymentStatus::Canceled => {
                    self.record_late_authorization(&mut tx, &row, event).await?;
                    after_commit = AfterCommit::VoidLateAuthorization;
                    Ok(row.status)
                }
                WebhookKind::PaymentAuthorized => {
                    if let Some(started) = row.confirm_started_at {
                        let seconds = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
                        self.metrics
                            .provider_latency_seconds
                            .observe(seconds.max(0.0));
                    }
                    let moved = self
                        .move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Authorized,
                            "authorized by the provider",
                        )
                        .await;
                    if moved.is_ok() {
                        after_commit = AfterCommit::Capture;
                    }
                    moved
                }
                WebhookKind::PaymentFailed => {
                    sqlx::query("UPDATE payments SET failure_reason = $2 WHERE id = $1")
                        .bind(id)
                        .bind(event.reason.as_deref().unwrap_or("declined"))
                        .execute(&mut *tx)
                        .await?;
                    let reason = format!(
                        "provider: {}",
                        event.reason.as_deref().unwrap_or("declined")
                    );
                    self.move_to(&mut tx, id, PaymentStatus::Failed, &reason)
                        .await
                }
                // Only the first such capture: a second one is the same money.
                WebhookKind::PaymentCaptured
                    if matches!(row.status, PaymentStatus::Canceled | PaymentStatus::Failed)
                        && row.captured_at.is_none() =>
                {
                    self.record_late_capture(&mut tx, &row, event).await?;
                    tracing::error!(payment = %id, status = row.status.as_str(), "a capture reached an ended payment; refunding it");
                    after_commit = AfterCommit::RefundLateCapture;
                    Ok(row.status)
                }
                WebhookKind::PaymentCaptured => {
                    if row.status == PaymentStatus::Created {
                        // The capture overtook its authorization: the capture implies it.
                        self.move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Authorized,
                            "implied by the capture",
                        )
                        .await?;
                    }
                    let moved = self
                        .move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Captured,
                            "captured by the provider",
                        )
                        .await;
                    if moved.is_ok() {
                        self.enqueue(&mut tx, &row, PaymentEventKind::Captured)
                            .await?;
                        after_commit = AfterCommit::Confirm;
                    }
                    moved
                }
                WebhookKind::PaymentRefunded
                    if matches!(row.status, PaymentStatus::Canceled | PaymentStatus::Failed)
                        && row.captured_at.is_none() =>
                {
                    // Nothing was taken from this payment, so nothing was given back.
                    Err(TransitionError::Invalid(crate::state::InvalidTransition {
                        from: row.status.as_str().to_owned(),
                        to: PaymentStatus::Refunded.as_str(),
                    }))
                }
                WebhookKind::PaymentRefunded => {
                    let moved = self
                        .move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Refunded,
                            "refunded by the provider",
                        )
                        .await;
                    // A late capture's refund: that payment never confirmed the
                    // hold, which may be another payment's now; nothing to cancel.
                    if moved
                        .as_ref()
                        .is_ok_and(|from| *from == PaymentStatus::Captured)
                    {
                        self.enqueue(&mut tx, &row, PaymentEventKind::Refunded)
                            .await?;
                        after_commit = AfterCommit::Cancel;
                    }
                    moved
                }
            };
            let outcome = match applied {
                Ok(_) if matches!(after_commit, AfterCommit::RefundLateCapture) => {
                    WebhookOutcome::LateCapture
                }
                Ok(_) if matches!(after_commit, AfterCommit::VoidLateAuthorization) => {
                    WebhookOutcome::LateAuthorization
                }
                Ok(_) => WebhookOutcome::Applied,
                Err(TransitionError::Invalid(_)) => WebhookOutcome::Stale,
                Err(error) => return Err(error.into()),
            };
            sqlx::query(
            "UPDATE webhook_events SET outcome = $3 WHERE provider = $1 AND provider_event_id = $2",
        )
        .bind(provider)
        .bind(&event.id)
        .bind(outcome.as_str())
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            let this = self.clone();
            match after_commit {
                AfterCommit::Nothing => {}
                AfterCommit::Capture => {
                    let provider = self.providers.get(&row.provider).cloned();
                    let mut payment = row.provider_payment();
                    payment.provider_ref = Some(event.provider_ref.clone());
                    tokio::spawn(async move {
                        if let Some(provider) = provider
                            && let Err(error) = provider.capture(&payment).await
                        {
                            tracing::warn!(%error, payment = %payment.payment_id, "capture request failed; the reconciler retries");
                        }
                    });
                }
                AfterCommit::Confirm => {
                    tokio::spawn(async move { this.confirm_reservation(id).await });
                }
                AfterCommit::Cancel => {
                    tokio::spawn(async move { this.cancel_reservation(id).await });
                }
                AfterCommit::VoidLateAuthorization => {
                    let mut row = row;
                    row.provider_ref = row.provider_ref.or(Some(event.provider_ref.clone()));
                    tokio::spawn(async move { this.void_late_authorization(&row).await });
                }
                AfterCommit::RefundLateCapture => {
                    let mut row = row;
                    row.provider_ref = row.provider_ref.or(Some(event.provider_ref.clone()));
                    tokio::spawn(async move {
                        if let Err(error) = this.request_refund(&row).await {
                            tracing::warn!(%error, payment = %row.id, "refund of a late capture failed; the reconciler retries");
                        }
                    });
                }
            }
            Ok(outcome)
        })
    }

    async fn enqueue(
        &self,
        conn: &mut PgConnection,
        row: &Row_,
        kind: PaymentEventKind,
    ) -> Result<(), sqlx::Error> {
        let message = PaymentEvent {
            schema: PAYMENT_EVENT_V1.to_owned(),
            message_id: uuid::Uuid::new_v4().to_string(),
            kind,
            payment_id: row.id.to_string(),
            hold_id: row.hold.clone(),
            event: self.event.clone(),
            user_id: row.user.clone(),
            amount_minor: row.amount,
            currency: row.currency.clone(),
            occurred_at_ms: unix_now_ms(),
            traceparent: row.traceparent.clone(),
        };
        urr_outbox::enqueue(conn, PAYMENT_EVENTS, &message.hold_id, &message).await?;
        Ok(())
    }

    /// The synchronous path after capture. Failure is not an error here: the
    /// Kafka message is already committed, and the reconciler retries.
    pub async fn confirm_reservation(&self, id: uuid::Uuid) {
        let row = match load(
            &mut *match self.pool.acquire().await {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "cannot load a payment to confirm");
                    return;
                }
            },
            id,
            false,
        )
        .await
        {
            Ok(Some(row)) if row.status == PaymentStatus::Captured => row,
            _ => return,
        };
        let request = TicketRequest::Confirm {
            hold: row.hold.clone(),
            body: ConfirmRequest {
                payment_id: id.to_string(),
                amount_minor: row.amount,
                currency: row.currency.clone(),
            },
            traceparent: row
                .traceparent
                .as_deref()
                .map(urr_service_common::trace::child),
        };
        let answer = self.ticket.call(request).await;
        self.metrics
            .circuit_state
            .set(crate::breaker::gauge_value(self.ticket.circuit_state()));
        match answer {
            Ok(TicketAnswer::Confirmed(confirmation)) => {
                self.metrics.ticket_call(if confirmation.already_confirmed {
                    "already-confirmed"
                } else {
                    "confirmed"
                });
                if let Err(error) = self
                    .record_reservation(id, &confirmation.reservation_id)
                    .await
                {
                    tracing::warn!(%error, "cannot record the reservation id");
                }
            }
            Ok(TicketAnswer::Refused {
                problem, detail, ..
            }) => {
                // The ticket service says the hold can never be confirmed by
                // this payment (expired, confirmed by another, repriced):
                // give the money back.
                self.metrics.ticket_call("refused");
                tracing::warn!(payment = %id, %problem, %detail, "the ticket service refused the confirmation; refunding");
                let reason =
                    format!("the ticket service refused the confirmation ({problem}); refunding");
                if let Err(error) = self.start_refund(&row, &reason).await {
                    tracing::warn!(%error, payment = %id, "automatic refund failed; the reconciler retries");
                }
            }
            Ok(TicketAnswer::Rejected {
                status,
                problem,
                detail,
            }) => {
                // Not a verdict on the hold (a wrong or rotated service
                // token, a misrouted URL): refunding here would refund
                // buyers the Kafka path then issues tickets to. The payment
                // stays captured without a reservation; the reconciler asks
                // again and Kafka confirms meanwhile. A human must look.
                let reason = if matches!(status, 401 | 403) {
                    "auth"
                } else {
                    "rejected"
                };
                self.metrics.ticket_call("rejected");
                self.metrics.confirm_deferred(reason);
                tracing::error!(payment = %id, status, %problem, %detail, reason, "the ticket service rejected the confirm call; not refunding, the reconciler retries");
            }
            Ok(TicketAnswer::Canceled(_)) => {}
            Err(error) => {
                let outcome = match error {
                    crate::ticket_client::TicketCallError::CircuitOpen(_) => "circuit-open",
                    crate::ticket_client::TicketCallError::Unavailable(_) => "unavailable",
                };
                self.metrics.ticket_call(outcome);
                self.metrics.confirm_deferred(outcome);
                // Money taken and no reservation yet: an error, so it pages
                // when it lasts (the retries with backoff are spent).
                tracing::error!(%error, payment = %id, reason = outcome, "synchronous confirm failed after its retries; not refunding, Kafka confirms and the reconciler retries");
            }
        }
    }

    /// Records the reservation a confirmation produced (either path).
    pub async fn record_reservation(
        &self,
        payment: uuid::Uuid,
        reservation: &str,
    ) -> Result<(), sqlx::Error> {
        record_reservation_on(&mut *self.pool.acquire().await?, payment, reservation).await
    }

    async fn cancel_reservation(&self, id: uuid::Uuid) {
        let Ok(Some(row)) = (async {
            let mut conn = self.pool.acquire().await?;
            load(&mut conn, id, false).await
        })
        .await
        else {
            return;
        };
        let request = TicketRequest::Cancel {
            hold: row.hold.clone(),
            body: CancelRequest {
                payment_id: id.to_string(),
                reason: "refunded".into(),
                ticket_ids: None,
                refund_id: None,
            },
            traceparent: row
                .traceparent
                .as_deref()
                .map(urr_service_common::trace::child),
        };
        match self.ticket.call(request).await {
            Ok(TicketAnswer::Refused {
                status,
                problem,
                detail,
            })
            | Ok(TicketAnswer::Rejected {
                status,
                problem,
                detail,
            }) => {
                self.metrics.ticket_call("cancel-refused");
                tracing::warn!(payment = %id, status, %problem, %detail, "the ticket service refused the cancel; Kafka cancels");
            }
            Ok(_) => self.metrics.ticket_call("canceled"),
            Err(error) => {
                self.metrics.ticket_call("unavailable");
                tracing::warn!(%error, payment = %id, "synchronous cancel failed; Kafka cancels");
            }
        }
    }

    /// Payments whose next step is overdue, for the reconciler.
    pub async fn stuck(
        &self,
        older_than_seconds: f64,
    ) -> Result<Vec<(uuid::Uuid, PaymentStatus, bool)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, status, payment_method IS NOT NULL AS confirmed FROM payments
             WHERE updated_at < now() - make_interval(secs => $1)
               AND (status = 'authorized'
                    OR (status = 'captured' AND (reservation_id IS NULL OR refund_requested_at IS NOT NULL))
                    OR (status IN ('canceled', 'failed') AND captured_at IS NOT NULL)
                    OR (status = 'created'))
             ORDER BY updated_at LIMIT 200",
        )
        .bind(older_than_seconds)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok((
                    row.try_get("id")?,
                    PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Failed),
                    row.try_get("confirmed")?,
                ))
            })
            .collect()
    }

    /// Re-drives one stuck payment.
    pub async fn redrive(
        &self,
        id: uuid::Uuid,
        abandon_after_seconds: f64,
    ) -> Result<(), PaymentError> {
        let row = load(&mut *self.pool.acquire().await?, id, false)
            .await?
            .ok_or(PaymentError::UnknownPayment)?;
        // A verdict may have been lost: what the provider says comes first.
        let confirmed = row.status == PaymentStatus::Created && row.method.is_some();
        let undecided = matches!(row.status, PaymentStatus::Authorized)
            || confirmed
            || (row.status == PaymentStatus::Captured && row.refund_requested_at.is_some());
        if undecided {
            let answer = self.settle_from_provider(&row).await?;
            let touch =
                sqlx::query("UPDATE payments SET updated_at = now() WHERE id = $1").bind(id);
            match answer {
                crate::lost_verdicts::Settled::Moved(_) => {
                    touch.execute(&self.pool).await?;
                    return Ok(());
                }
                // The buyer confirmed and the provider cannot say what
                // became of it (down, an unknown status): money may have
                // moved, so the payment is neither abandoned nor confirmed
                // again; it waits, and the next pass asks again.
                crate::lost_verdicts::Settled::Unknown(reason) if confirmed => {
                    touch.execute(&self.pool).await?;
                    return Err(PaymentError::ProviderUnavailable(reason));
                }
                _ => {}
            }
        }
        match row.status {
            PaymentStatus::Authorized => {
                if let Some(provider) = self.providers.get(&row.provider) {
                    provider
                        .capture(&row.provider_payment())
                        .await
                        .map_err(|e| PaymentError::ProviderUnavailable(e.to_string()))?;
                }
            }
            // A refund owed (its provider or ticket call failed): finish it
            // before anything else, never confirm the tickets again.
            PaymentStatus::Captured if row.refund_requested_at.is_some() => {
                self.start_refund(&row, "refund re-driven by the reconciler")
                    .await?
            }
            PaymentStatus::Captured => self.confirm_reservation(id).await,
            // A late capture whose refund has not come back: ask again.
            PaymentStatus::Canceled | PaymentStatus::Failed if row.captured_at.is_some() => {
                self.request_refund(&row).await?
            }
            PaymentStatus::Created => {
                // Since the buyer last acted (the intent, or its confirm),
                // not since the last pass: every pass moves `updated_at`,
                // so an age from it never reached `abandon_after`.
                let age: f64 = sqlx::query_scalar(
                    "SELECT EXTRACT(EPOCH FROM (now() - COALESCE(confirm_started_at, created_at)))::float8
                       FROM payments WHERE id = $1",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
                match &row.method {
                    // The provider never answered the authorization: ask again.
                    Some(method) if age < abandon_after_seconds => {
                        self.authorize(&row, method).await?
                    }
                    // Never confirmed, or lost: the buyer walked away.
                    _ if age >= abandon_after_seconds => {
                        let mut tx = self.pool.begin().await?;
                        self.move_to(&mut tx, id, PaymentStatus::Canceled, "abandoned")
                            .await?;
                        tx.commit().await?;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        sqlx::query("UPDATE payments SET updated_at = now() WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Refreshes the by-state gauge.
    pub async fn refresh_gauges(&self) -> Result<(), sqlx::Error> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM payments GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        for state in crate::state::ALL {
            let count = rows
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.metrics
                .payments
                .get_or_create(&crate::telemetry::StateLabel {
                    state: state.as_str().to_owned(),
                })
                .set(count);
        }
        self.metrics
            .circuit_state
            .set(crate::breaker::gauge_value(self.ticket.circuit_state()));
        Ok(())
    }
}

enum AfterCommit {
    Nothing,
    Capture,
    Confirm,
    Cancel,
    RefundLateCapture,
    VoidLateAuthorization,
}
