//! Signed webhooks: `Urr-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! the scheme payment gateways use (Stripe's, in substance). A signature is
//! checked in constant time, and a timestamp outside the replay window is
//! refused, so a captured delivery cannot be replayed later.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "urr-signature";
/// Deliveries older or newer than this are refused.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;

/// What a provider tells us happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// The provider's id of this notification (deduplication key).
    pub id: String,
    pub kind: WebhookKind,
    pub payment_id: String,
    pub provider_ref: String,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub occurred_at: i64,
    /// A refund's URR refund id, when it is a part's
    /// ([`crate::refund_parts`]): the part it settles, whatever its amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    PaymentAuthorized,
    PaymentFailed,
    PaymentCaptured,
    PaymentRefunded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature header")]
    Missing,
    #[error("malformed signature header")]
    Malformed,
    #[error("timestamp outside the {REPLAY_WINDOW_SECONDS} s replay window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// HMAC-SHA256 over `"{timestamp}.{body}"`: the sandbox signs like Stripe,
/// so both schemes share this (`provider::stripe::signature`).
pub(crate) fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a header value against `body` at time `now`.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signature = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Malformed);
    };
    // `abs_diff` cannot overflow: the timestamp is the sender's input, and
    // `(now - t).abs()` panics (or wraps into the window) for t near i64::MIN/MAX.
    if now.abs_diff(timestamp) > REPLAY_WINDOW_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    mac(secret, timestamp, body)
        .verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-test";

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(SECRET, 1_000, body);
        assert_eq!(verify(SECRET, Some(&header), body, 1_010), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&header), br#"{"id":"evt_2"}"#, 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&header), body, 1_010),
            Err(SignatureError::Mismatch)
        );
        let shifted = header.replace("t=1000", "t=1001");
        assert_eq!(
            verify(SECRET, Some(&shifted), body, 1_010),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_missing_and_malformed_headers_are_refused() {
        let body = b"{}";
        let header = sign(SECRET, 1_000, body);
        assert_eq!(
            verify(
                SECRET,
                Some(&header),
                body,
                1_000 + REPLAY_WINDOW_SECONDS + 1
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, None, body, 1_000),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=1000",
            "v1=00",
            "t=x,v1=00",
            "t=1000,v1=zz",
            "t=9223372036854775808,v1=00",
        ] {
            assert_eq!(
                verify(SECRET, Some(bad), body, 1_000),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let body = b"{}";
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1] {
            let header = sign(SECRET, t, body);
            for now in [1_700_000_000, 0, -1_700_000_000, i64::MIN, i64::MAX] {
                if now.abs_diff(t) <= 300 {
                    continue;
                }
                assert_eq!(
                    verify(SECRET, Some(&header), body, now),
                    Err(SignatureError::Stale),
                    "t={t} now={now}"
                );
            }
        }
        // The window itself is unchanged at the edges.
        let header = sign(SECRET, 1_000, body);
        assert_eq!(verify(SECRET, Some(&header), body, 1_300), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), body, 700), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&header), body, 699),
            Err(SignatureError::Stale)
        );
    }
}
