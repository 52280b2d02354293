//! `Stripe-Signature` verification, as Stripe documents it
//! (<https://docs.stripe.com/webhooks#verify-manually>):
//!
//! * the header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`;
//! * the signed payload is `"<t>.<raw body>"`, the tag HMAC-SHA256 keyed with
//!   the endpoint's signing secret (the whole `whsec_…` string);
//! * only `v1` counts (`v0` is a test-mode scheme and is ignored); while a
//!   secret is rolled, Stripe signs with the old and the new one and sends a
//!   `v1` for each, so a delivery is genuine when any `v1` matches any of
//!   the secrets we hold;
//! * a timestamp outside the tolerance (300 s by default) is refused, so a
//!   captured delivery cannot be replayed; the difference is computed
//!   without overflow for any `t` a sender writes.

use hmac::Mac;

pub const HEADER: &str = "stripe-signature";
/// Stripe's libraries' default tolerance.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StripeSignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("no v1 signature in the Stripe-Signature header")]
    NoV1,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("no v1 signature matches a signing secret")]
    Mismatch,
}

/// The status a refusal gets is the one every provider's does (401 for a
/// missing or wrong signature, 400 for a malformed header or a stale one).
impl From<StripeSignatureError> for crate::webhook::SignatureError {
    fn from(error: StripeSignatureError) -> Self {
        use crate::webhook::SignatureError;
        match error {
            StripeSignatureError::Missing => SignatureError::Missing,
            StripeSignatureError::Malformed | StripeSignatureError::NoV1 => {
                SignatureError::Malformed
            }
            StripeSignatureError::Stale => SignatureError::Stale,
            StripeSignatureError::Mismatch => SignatureError::Mismatch,
        }
    }
}

/// A header as Stripe would send it for `body` at `timestamp`, one `v1` per
/// secret (the fixtures of the tests and of the flash sale's webhook emitter).
pub fn sign(secrets: &[&[u8]], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let bytes = crate::webhook::mac(secret, timestamp, body)
            .finalize()
            .into_bytes();
        header.push_str(",v1=");
        header.push_str(&hex::encode(bytes));
    }
    header
}

/// Checks `header` for `body` at `now` against every secret in `secrets`.
pub fn verify(
    secrets: &[Vec<u8>],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_seconds: u64,
) -> Result<(), StripeSignatureError> {
    let header = header.ok_or(StripeSignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| StripeSignatureError::Malformed)?,
                )
            }
            Some(("v1", value)) => {
                // A v1 that is not hex cannot match; the others still may.
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            Some(_) => {} // v0 and schemes to come
            None => return Err(StripeSignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(StripeSignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(StripeSignatureError::NoV1);
    }
    if now.abs_diff(timestamp) > tolerance_seconds {
        return Err(StripeSignatureError::Stale);
    }
    let genuine = secrets.iter().any(|secret| {
        signatures.iter().any(|signature| {
            crate::webhook::mac(secret, timestamp, body)
                .verify_slice(signature)
                .is_ok()
        })
    });
    if genuine {
        Ok(())
    } else {
        Err(StripeSignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use hmac::Hmac;
    use sha2::Sha256;

    use super::*;

    const OLD: &[u8] = b"whsec_old_0123456789abcdef";
    const NEW: &[u8] = b"whsec_new_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    fn ours(secrets: &[&[u8]]) -> Vec<Vec<u8>> {
        secrets.iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn a_delivery_signed_the_way_stripe_signs_verifies() {
        // The tag of "<t>.<body>" keyed with the whole whsec_ string, in
        // lowercase hex, computed independently of `sign`.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(NEW).expect("key");
        mac.update(b"1700000000.");
        mac.update(BODY);
        let expected = hex::encode(mac.finalize().into_bytes());
        let header = format!(
            "t=1700000000,v1={expected},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
        );
        assert_eq!(
            sign(&[NEW], 1_700_000_000, BODY),
            format!("t=1700000000,v1={expected}")
        );
        assert_eq!(
            verify(&ours(&[NEW]), Some(&header), BODY, 1_700_000_100, 300),
            Ok(())
        );
    }

    #[test]
    fn during_a_secret_roll_either_secret_and_either_signature_is_enough() {
        let both = sign(&[OLD, NEW], 1_000, BODY);
        for held in [ours(&[OLD]), ours(&[NEW]), ours(&[NEW, OLD])] {
            assert_eq!(verify(&held, Some(&both), BODY, 1_000, 300), Ok(()));
        }
        let old_only = sign(&[OLD], 1_000, BODY);
        assert_eq!(
            verify(&ours(&[NEW]), Some(&old_only), BODY, 1_000, 300),
            Err(StripeSignatureError::Mismatch)
        );
    }

    #[test]
    fn tampering_staleness_and_bad_headers_are_refused() {
        let header = sign(&[NEW], 1_000, BODY);
        let held = ours(&[NEW]);
        assert_eq!(
            verify(&held, Some(&header), b"{}", 1_000, 300),
            Err(StripeSignatureError::Mismatch)
        );
        assert_eq!(
            verify(&held, Some(&header), BODY, 1_301, 300),
            Err(StripeSignatureError::Stale)
        );
        assert_eq!(verify(&held, Some(&header), BODY, 700, 300), Ok(()));
        assert_eq!(
            verify(&held, None, BODY, 1_000, 300),
            Err(StripeSignatureError::Missing)
        );
        assert_eq!(
            verify(&held, Some("t=1000,v0=00"), BODY, 1_000, 300),
            Err(StripeSignatureError::NoV1)
        );
        for bad in [
            "",
            "v1=00",
            "t=x,v1=00",
            "t=1000,garbage",
            "t=9223372036854775808,v1=00",
        ] {
            assert_eq!(
                verify(&held, Some(bad), BODY, 1_000, 300),
                Err(StripeSignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let held = ours(&[NEW]);
        for t in [i64::MIN, i64::MAX] {
            let header = sign(&[NEW], t, BODY);
            for now in [0, i64::MIN, i64::MAX, 1_700_000_000] {
                if now.abs_diff(t) <= 300 {
                    continue;
                }
                assert_eq!(
                    verify(&held, Some(&header), BODY, now, 300),
                    Err(StripeSignatureError::Stale)
                );
            }
        }
    }
}
