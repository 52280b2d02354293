//! The buyer's own calls: a payment intent priced by the ticket service
//! (idempotent by key), its view, the confirm that sends the method to the
//! provider, and the cancel before authorization.

use urr_service_common::contracts::{HoldQuote, HoldStatus};

use super::view::view_on;
use super::{Payments, Row_, load, parse_id};
use crate::error::PaymentError;
use crate::provider::ProviderError;
use crate::state::{PaymentStatus, TransitionError};
use crate::ticket_client::valid_hold_id;

use super::PaymentView;

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

impl Payments {
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
        // The new payment's view is known before it is written, so the
        // payment, its first transition and (with a key) the stored answer
        // go in one statement: one round trip holding a pooled connection,
        // not seven (begin, two inserts, three reads back, the update,
        // commit). Under the crowd the pool was where creates waited
        // (issue 24). The transition's time is this process's clock, the
        // one the answer shows, truncated to the microsecond PostgreSQL
        // stores (it would round, and a rounded time can fall in the next
        // millisecond of the answer's).
        let at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
        let reason = format!("intent for hold {hold}, amount from the ticket service's quote");
        let view = PaymentView {
            payment_id: id.to_string(),
            event: self.event.clone(),
            hold_id: hold.to_owned(),
            user_id: user.to_owned(),
            status: PaymentStatus::Created,
            amount_minor: quote.amount_minor,
            currency: quote.currency.clone(),
            provider: self.provider.to_owned(),
            payment_method: None,
            reservation_id: None,
            failure_reason: None,
            poll_after_ms: super::view::poll_after_ms(PaymentStatus::Created, false, false),
            refunded_minor: 0,
            refunds: Vec::new(),
            transitions: vec![super::view::TransitionView {
                from: None,
                to: PaymentStatus::Created.as_str().to_owned(),
                reason: reason.clone(),
                at_ms: at.timestamp_millis(),
            }],
        };
        let stored_answer = match idempotency {
            Some(_) => {
                Some(serde_json::to_value(&view).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
            }
            None => None,
        };
        let inserted = sqlx::query(
            "WITH payment AS (
                 INSERT INTO payments (id, event_id, hold_id, user_id, amount_minor, currency, status, provider,
                                       idempotency_key, request_hash, traceparent,
                                       idempotent_status, idempotent_body)
                 VALUES ($1, $2, $3, $4, $5, $6, 'created', $7, $8, $9, $10, $11, $12)
                 RETURNING id
             )
             INSERT INTO payment_transitions (payment_id, from_status, to_status, reason, at)
             SELECT id, NULL, 'created', $13, $14 FROM payment",
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
        .bind(stored_answer.as_ref().map(|_| CREATED_STATUS as i16))
        .bind(stored_answer)
        .bind(&reason)
        .bind(at)
        .execute(&self.pool)
        .await;
        if let Err(sqlx::Error::Database(error)) = &inserted
            && error.is_unique_violation()
        {
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
}
