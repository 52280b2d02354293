//! The payment step of a buyer's journey: create (sometimes twice, as a
//! dropped answer makes an app do), confirm, then read until it settles.

use super::*;

/// Reads of a payment whose confirm stayed busy to its last retry, before
/// the buyer gives up on it (it may have gone through regardless).
const UNCONFIRMED_READS: u32 = 5;

impl Crowd {
    /// Pays, sometimes sending the request twice, sometimes declined.
    pub(super) async fn pay(&self, user: &str, hold: &str) -> Result<Outcome, Stop> {
        let started = Instant::now();
        let key = uuid::Uuid::new_v4().to_string();
        let create = || {
            requests::create_payment(&self.secrets.user_token(user, unix_now()), &key, hold)
                .build(&self.http, &self.info.payment_url)
        };
        let response = self.send_retrying("payment create", create).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.fail(&format!("payment create: {}", response.status())));
        }
        let payment: Value = response
            .json()
            .await
            .map_err(|_| self.fail("payment: unreadable"))?;
        let payment = PaymentRead::read(&payment);
        let id = payment.id.clone().unwrap_or_default();
        if rand::rng().random_bool(self.args.retry_share.clamp(0.0, 1.0)) {
            // The network dropped the answer; the buyer's app retries.
            let again = self.send_retrying("payment retry", create).await?;
            if !again.status().is_success() {
                return Err(self.fail(&format!("payment retry: {}", again.status())));
            }
            let again: Value = again
                .json()
                .await
                .map_err(|_| self.fail("payment retry: unreadable"))?;
            let again = PaymentRead::read(&again);
            if again.id != payment.id {
                self.recorder.anomaly(format!(
                    "idempotency: one key gave payments {:?} and {:?}",
                    payment.id, again.id
                ));
            }
        }
        self.recorder.step("payment create", ms(started));
        let declined = rand::rng().random_bool(self.args.decline_share.clamp(0.0, 1.0));
        let method = self.args.payment_methods.method(declined);
        let confirmed = Instant::now();
        let response = self
            .send_retrying("payment confirm", || {
                requests::confirm_payment(&id, &self.secrets.user_token(user, unix_now()), method)
                    .build(&self.http, &self.info.payment_url)
            })
            .await?;
        // Busy to the last retry: the confirm may still have gone through
        // (the service can answer 503 after it handed the payment on), so,
        // as the buyer's app does, read the payment before giving up: a
        // capture the buyer never learns of is money taken for nothing.
        let confirm_status = response.status();
        let mut unconfirmed_reads = if confirm_status == StatusCode::ACCEPTED {
            None
        } else if is_busy(confirm_status) {
            self.recorder.recovered(format!(
                "payment confirm: {confirm_status}, reading the payment"
            ));
            Some(UNCONFIRMED_READS)
        } else {
            return Err(self.fail(&format!("payment confirm: {confirm_status}")));
        };
        let accepted: Value = response.json().await.unwrap_or_default();
        // As the buyer's page: read again when the service says to.
        let mut poll_after = Duration::from_millis(
            PaymentRead::read(&accepted)
                .poll_after_ms
                .unwrap_or(500)
                .clamp(100, 5_000),
        );
        loop {
            self.check_time()?;
            tokio::time::sleep(poll_after).await;
            let response = self
                .send_retrying("payment poll", || {
                    requests::read_payment(&id, &self.secrets.user_token(user, unix_now()))
                        .build(&self.http, &self.info.payment_url)
                })
                .await?;
            if response.status() != StatusCode::OK {
                return Err(self.fail(&format!("payment poll: {}", response.status())));
            }
            let state: Value = response
                .json()
                .await
                .map_err(|_| self.fail("payment poll: unreadable"))?;
            let state = PaymentRead::read(&state);
            if let Some(ms) = state.poll_after_ms {
                poll_after = Duration::from_millis(ms.clamp(100, 5_000));
            }
            match state.status.as_deref() {
                Some("captured") => {
                    self.recorder.step("payment to capture", ms(confirmed));
                    self.recorder.captured(id);
                    return Ok(Outcome::Paid);
                }
                // The journey lets the hold go.
                Some("failed") => return Ok(Outcome::Declined),
                // Never confirmed: after a few reads the buyer gives up.
                Some("created") if unconfirmed_reads.is_some() => {
                    let left = unconfirmed_reads.unwrap_or_default().saturating_sub(1);
                    if left == 0 {
                        return Err(self.fail(&format!("payment confirm: {confirm_status}")));
                    }
                    unconfirmed_reads = Some(left);
                }
                Some("created" | "authorized") => {}
                other => return Err(self.fail(&format!("payment ended {other:?}"))),
            }
        }
    }
}
