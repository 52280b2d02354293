//! `urr-vwr-token`: the tier-1 edge pass.
//!
//! ```text
//! token   = base64url(payload) "." base64url(HMAC-SHA256(key, payload))     (no padding)
//! payload = "v1" "|" keyId "|" room "|" number "|" expiresAt
//! ```
//!
//! `room` is the WaitingRoom's `<namespace>/<name>`; none of the fields can
//! contain `|` (names are DNS labels, key ids match `[A-Za-z0-9._-]`). The
//! signature covers the exact payload bytes, so the CloudFront function can
//! verify it with `crypto.createHmac('sha256', key)` and compare in constant
//! time. The key id lets keys rotate: the edge knows the current and the
//! previous key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Cookie that carries the token.
pub const COOKIE_NAME: &str = "urr-vwr-token";
const VERSION: &str = "v1";

/// One HMAC key with its id.
#[derive(Clone)]
pub struct VwrKey {
    pub id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for VwrKey {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VwrKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl VwrKey {
    pub fn new(id: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
        }
    }

    /// The key of `URR_VWR_SIGNING_KEY`, refused under
    /// [`MIN_KEY_BYTES`](super::key_length::MIN_KEY_BYTES) (start-up).
    pub fn from_env_secret(
        id: impl Into<String>,
        secret: &str,
    ) -> Result<Self, super::key_length::KeyTooShort> {
        super::key_length::require_min_length("URR_VWR_SIGNING_KEY", secret)
            .map(|bytes| Self::new(id, bytes.to_vec()))
    }

    pub(super) fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        #[allow(clippy::expect_used)]
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VwrClaims {
    pub key_id: String,
    pub room: String,
    pub number: u64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why a token was refused. The edge only cares that it was; the queue
/// service logs the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VwrError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token is for another room")]
    WrongRoom,
}

impl VwrError {
    /// The outcome names used in the shared test vectors.
    pub fn outcome(self) -> &'static str {
        match self {
            VwrError::Malformed => "malformed",
            VwrError::UnknownKey => "unknown-key",
            VwrError::BadSignature => "bad-signature",
            VwrError::Expired => "expired",
            VwrError::WrongRoom => "wrong-room",
        }
    }
}

/// Signs a token for `number` in `room`, valid until `expires_at`.
pub fn sign(key: &VwrKey, room: &str, number: u64, expires_at: i64) -> String {
    let payload = format!("{VERSION}|{}|{room}|{number}|{expires_at}", key.id);
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    let signature = mac.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Verifies a token for `room` at `now` (Unix seconds) against `keys`.
/// Checks run in the order the edge runs them: shape, key, signature
/// (constant time), expiry, room.
pub fn verify(keys: &[VwrKey], token: &str, room: &str, now: i64) -> Result<VwrClaims, VwrError> {
    let (payload, signature) = open(token)?;
    let fields: Vec<&str> = payload.split('|').collect();
    let [version, key_id, token_room, number, expires_at] = fields.as_slice() else {
        return Err(VwrError::Malformed);
    };
    if *version != VERSION {
        return Err(VwrError::Malformed);
    }
    let number: u64 = number.parse().map_err(|_| VwrError::Malformed)?;
    let expires_at: i64 = expires_at.parse().map_err(|_| VwrError::Malformed)?;
    check(keys, key_id, &payload, &signature)?;
    check_claims(token_room, room, expires_at, now)?;
    Ok(VwrClaims {
        key_id: (*key_id).to_owned(),
        room: (*token_room).to_owned(),
        number,
        expires_at,
    })
}

/// The envelope both token kinds share: the payload (UTF-8) and the
/// signature bytes; anything else is `Malformed`.
pub(super) fn open(token: &str) -> Result<(String, Vec<u8>), VwrError> {
    let (payload_b64, signature_b64) = token.split_once('.').ok_or(VwrError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| VwrError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| VwrError::Malformed)?;
    let payload = String::from_utf8(payload).map_err(|_| VwrError::Malformed)?;
    Ok((payload, signature))
}

/// The signature of `payload` under the key `key_id` names among `keys`
/// (`verify_slice` compares in constant time).
pub(super) fn check(
    keys: &[VwrKey],
    key_id: &str,
    payload: &str,
    signature: &[u8],
) -> Result<(), VwrError> {
    let key = keys
        .iter()
        .find(|k| k.id == key_id)
        .ok_or(VwrError::UnknownKey)?;
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    mac.verify_slice(signature)
        .map_err(|_| VwrError::BadSignature)
}

/// After the signature, in the edge's order: expiry, then room.
pub(super) fn check_claims(
    token_room: &str,
    room: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), VwrError> {
    if now >= expires_at {
        return Err(VwrError::Expired);
    }
    if token_room != room {
        return Err(VwrError::WrongRoom);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> VwrKey {
        VwrKey::new("k1", b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn a_short_vwr_key_is_refused_at_start_up() {
        let error = VwrKey::from_env_secret("k1", "vwr-dev-key").expect_err("11 bytes");
        assert_eq!(error.variable, "URR_VWR_SIGNING_KEY");
        let key = VwrKey::from_env_secret("k1", "0123456789abcdef0123456789abcdef").expect("32");
        assert_eq!(key.id, "k1");
    }

    #[test]
    fn round_trip() {
        let token = sign(&key(), "urr-demo/aurora", 42, 2_000);
        let claims = verify(&[key()], &token, "urr-demo/aurora", 1_000).expect("valid");
        assert_eq!(claims.number, 42);
        assert_eq!(claims.key_id, "k1");
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let token = sign(&key(), "ns/room", 42, 2_000);
        assert_eq!(
            verify(&[key()], &token, "ns/room", 2_000),
            Err(VwrError::Expired)
        );
        assert_eq!(
            verify(&[key()], &token, "ns/other", 1_000),
            Err(VwrError::WrongRoom)
        );
        let other = VwrKey::new("k2", b"x".to_vec());
        assert_eq!(
            verify(&[other], &token, "ns/room", 1_000),
            Err(VwrError::UnknownKey)
        );
        let forged = VwrKey::new("k1", b"not the key".to_vec());
        assert_eq!(
            verify(&[forged], &token, "ns/room", 1_000),
            Err(VwrError::BadSignature)
        );
        for bad in ["", ".", "abc", "a.b.c", "!!!.???"] {
            assert_eq!(
                verify(&[key()], bad, "ns/room", 1_000),
                Err(VwrError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_raised_number_breaks_the_signature() {
        let token = sign(&key(), "ns/room", 42, 2_000);
        let (payload, signature) = token.split_once('.').expect("two parts");
        let raised = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("b64"))
            .expect("utf8")
            .replace("|42|", "|1|");
        let tampered = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(raised));
        assert_eq!(
            verify(&[key()], &tampered, "ns/room", 1_000),
            Err(VwrError::BadSignature)
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert!(!format!("{:?}", key()).contains("0123456789"));
    }
}
