//! Invite and presale codes: signed, expiring, single-use codes that let a
//! buyer skip the line or join at its head.
//!
//! ```text
//! code    = base64url(payload) "." base64url(HMAC-SHA256(key, payload))     (no padding)
//! payload = "i1" "|" keyId "|" room "|" codeId "|" mode "|" expiresAt
//! ```
//!
//! The envelope and the keys are those of the `urr-vwr-token` ([`super::vwr`]):
//! `urr-operator invite` mints codes with the room's signing key, the edge
//! checks them with the keys the room's entry lists, and the queue with the
//! keys it signs passes with. The version field keeps the two apart: a pass
//! (`v1`, five fields) is never a code, nor a code a pass. `mode` is `skip`
//! (admitted on join) or `priority` (ahead of everyone who joined without a
//! code). The signature only proves the code is the room's; single use is
//! the queue's (it records each `codeId` with the user who redeemed it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;

use super::vwr::{self, VwrError, VwrKey};

const VERSION: &str = "i1";
/// The query parameter that carries a code to the edge and the waiting page.
pub const QUERY_PARAMETER: &str = "urr-invite";
/// A code id: what the operator's mint command writes, at most 32 of
/// `[A-Za-z0-9_-]`.
pub const MAX_CODE_ID_LEN: usize = 32;

/// What a code does for the buyer who redeems it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InviteMode {
    /// Admitted on join, past the line and the admission rate.
    Skip,
    /// Into the line ahead of everyone who joined without a code.
    Priority,
}

impl InviteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            InviteMode::Skip => "skip",
            InviteMode::Priority => "priority",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "skip" => Some(InviteMode::Skip),
            "priority" => Some(InviteMode::Priority),
            _ => None,
        }
    }
}

/// What a valid code says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteClaims {
    pub key_id: String,
    pub room: String,
    pub code_id: String,
    pub mode: InviteMode,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why a code id cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a code id is 1 to {MAX_CODE_ID_LEN} of A-Z, a-z, 0-9, '-' and '_'; got {0:?}")]
pub struct BadCodeId(pub String);

fn valid_code_id(id: &str) -> bool {
    (1..=MAX_CODE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Signs code `code_id` of `room`, valid until `expires_at`.
pub fn sign(
    key: &VwrKey,
    room: &str,
    code_id: &str,
    mode: InviteMode,
    expires_at: i64,
) -> Result<String, BadCodeId> {
    if !valid_code_id(code_id) {
        return Err(BadCodeId(code_id.to_owned()));
    }
    let payload = format!(
        "{VERSION}|{}|{room}|{code_id}|{}|{expires_at}",
        key.id,
        mode.as_str()
    );
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    ))
}

/// Verifies `code` for `room` at `now` against `keys`, in the order the
/// edge checks: shape, key, signature (constant time), expiry, room. The
/// refusals are the pass's ([`VwrError`]), with their outcome names.
pub fn verify(keys: &[VwrKey], code: &str, room: &str, now: i64) -> Result<InviteClaims, VwrError> {
    let (payload, signature) = vwr::open(code)?;
    let fields: Vec<&str> = payload.split('|').collect();
    let [version, key_id, code_room, code_id, mode, expires_at] = fields.as_slice() else {
        return Err(VwrError::Malformed);
    };
    let mode = InviteMode::parse(mode).ok_or(VwrError::Malformed)?;
    if *version != VERSION || !valid_code_id(code_id) {
        return Err(VwrError::Malformed);
    }
    let expires_at: i64 = expires_at.parse().map_err(|_| VwrError::Malformed)?;
    vwr::check(keys, key_id, &payload, &signature)?;
    vwr::check_claims(code_room, room, expires_at, now)?;
    Ok(InviteClaims {
        key_id: (*key_id).to_owned(),
        room: (*code_room).to_owned(),
        code_id: (*code_id).to_owned(),
        mode,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::vwr;

    fn key() -> VwrKey {
        VwrKey::new("k1", b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn a_code_round_trips_with_its_id_and_mode() {
        let code = sign(&key(), "ns/room", "vip-0001", InviteMode::Skip, 2_000).expect("signed");
        let claims = verify(&[key()], &code, "ns/room", 1_000).expect("valid");
        assert_eq!(claims.code_id, "vip-0001");
        assert_eq!(claims.mode, InviteMode::Skip);
        assert_eq!(claims.expires_at, 2_000);
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let code = sign(&key(), "ns/room", "c1", InviteMode::Priority, 2_000).expect("signed");
        assert_eq!(
            verify(&[key()], &code, "ns/room", 2_000),
            Err(VwrError::Expired)
        );
        assert_eq!(
            verify(&[key()], &code, "ns/other", 1_000),
            Err(VwrError::WrongRoom)
        );
        let forged = VwrKey::new("k1", b"another key of thirty-two bytes!".to_vec());
        assert_eq!(
            verify(&[forged], &code, "ns/room", 1_000),
            Err(VwrError::BadSignature)
        );
        assert_eq!(
            verify(&[VwrKey::new("k2", b"x".to_vec())], &code, "ns/room", 1_000),
            Err(VwrError::UnknownKey)
        );
        for bad in ["", ".", "abc", "a.b.c"] {
            assert_eq!(
                verify(&[key()], bad, "ns/room", 1_000),
                Err(VwrError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_pass_is_not_a_code_nor_a_code_a_pass() {
        let pass = vwr::sign(&key(), "ns/room", 7, 2_000);
        assert_eq!(
            verify(&[key()], &pass, "ns/room", 1_000),
            Err(VwrError::Malformed)
        );
        let code = sign(&key(), "ns/room", "c1", InviteMode::Skip, 2_000).expect("signed");
        assert_eq!(
            vwr::verify(&[key()], &code, "ns/room", 1_000),
            Err(VwrError::Malformed)
        );
    }

    #[test]
    fn a_changed_mode_breaks_the_signature_and_bad_ids_are_not_signed() {
        let code = sign(&key(), "ns/room", "c1", InviteMode::Priority, 2_000).expect("signed");
        let (payload, signature) = code.split_once('.').expect("two parts");
        let raised = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("b64"))
            .expect("utf8")
            .replace("|priority|", "|skip|");
        let tampered = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(raised));
        assert_eq!(
            verify(&[key()], &tampered, "ns/room", 1_000),
            Err(VwrError::BadSignature)
        );
        for bad in ["", "a|b", "a b", &"x".repeat(33)] {
            assert!(
                sign(&key(), "ns/room", bad, InviteMode::Skip, 2_000).is_err(),
                "{bad}"
            );
        }
    }
}
