//! `urr-entry-token`: handed out at tier-2 admission, required by the ticket
//! API. An HS256 JWT bound to one user and one event, with a short lifetime
//! (the WaitingRoom's `entryTokenTtlSeconds`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// `typ` claim, so a user JWT signed with a shared secret can never pass as
/// an entry token.
pub const TOKEN_TYPE: &str = "urr-entry";
/// Header and cookie name.
pub const HEADER_NAME: &str = "urr-entry-token";

/// The claims of an entry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryClaims {
    /// User id.
    pub sub: String,
    /// Event id.
    pub evt: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique id, for audit logs.
    pub jti: String,
    pub typ: String,
}

/// Redis key where the queue records (Unix ms) when `user` gave their entry
/// slot back at `event` (`DELETE …/queue/me`). The token is a bearer JWT and
/// stays valid until it expires, so without this record a user who left could
/// keep buying while the freed slot admits someone else, past
/// `maxActiveUsers`. Hash-tagged like every key of the event; written by the
/// queue service, read by the ticket service (same Redis).
pub fn revocation_key(event: &str, user: &str) -> String {
    format!("urr:{{{event}}}:entry-revoked:{user}")
}

impl EntryClaims {
    /// Whether a revocation recorded at `revoked_at_ms` covers this token:
    /// every token issued up to that moment. `iat` has whole seconds, so a
    /// token issued after a re-admission within the same second as the leave
    /// is refused too; the next poll of the queue gets a fresh one.
    pub fn revoked_by(&self, revoked_at_ms: i64) -> bool {
        self.iat.saturating_mul(1000) <= revoked_at_ms
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryTokenError {
    #[error("entry token is malformed or its signature is invalid")]
    Invalid,
    #[error("entry token expired")]
    Expired,
    #[error("entry token belongs to another user or event")]
    WrongBinding,
}

/// Signs and checks entry tokens with one HMAC key.
#[derive(Clone)]
pub struct EntryTokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for EntryTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntryTokenKey(..)")
    }
}

impl EntryTokenKey {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// The key of `URR_ENTRY_TOKEN_KEY`, refused under
    /// [`MIN_KEY_BYTES`](super::key_length::MIN_KEY_BYTES) (start-up).
    pub fn from_env_secret(secret: &str) -> Result<Self, super::key_length::KeyTooShort> {
        super::key_length::require_min_length("URR_ENTRY_TOKEN_KEY", secret).map(Self::new)
    }

    /// Issues a token for `user` at `event`, expiring at `expires_at` (Unix s).
    pub fn issue(
        &self,
        user: &str,
        event: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = EntryClaims {
            sub: user.to_owned(),
            evt: event.to_owned(),
            iat: issued_at,
            exp: expires_at,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: TOKEN_TYPE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks signature (constant time, inside `jsonwebtoken`), expiry, type,
    /// and that the token is bound to `user` and `event`.
    pub fn verify(
        &self,
        token: &str,
        user: &str,
        event: &str,
    ) -> Result<EntryClaims, EntryTokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<EntryClaims>(token, &self.decoding, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => EntryTokenError::Expired,
                _ => EntryTokenError::Invalid,
            })?;
        let claims = data.claims;
        if claims.typ != TOKEN_TYPE {
            return Err(EntryTokenError::Invalid);
        }
        if !(ct_eq(&claims.sub, user) & ct_eq(&claims.evt, event)) {
            return Err(EntryTokenError::WrongBinding);
        }
        Ok(claims)
    }
}

/// Constant-time equality (the length of an id is not a secret).
fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        crate::unix_now()
    }

    #[test]
    fn issued_token_verifies_for_its_user_and_event_only() {
        let key = EntryTokenKey::new(b"entry-secret-entry-secret-32byte");
        let token = key
            .issue("user-1", "aurora", now(), now() + 600)
            .expect("issue");
        let claims = key.verify(&token, "user-1", "aurora").expect("valid");
        assert_eq!(claims.typ, TOKEN_TYPE);
        assert_eq!(
            key.verify(&token, "user-2", "aurora"),
            Err(EntryTokenError::WrongBinding)
        );
        assert_eq!(
            key.verify(&token, "user-1", "other"),
            Err(EntryTokenError::WrongBinding)
        );
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let key = EntryTokenKey::new(b"entry-secret-entry-secret-32byte");
        let expired = key
            .issue("u", "e", now() - 700, now() - 100)
            .expect("issue");
        assert_eq!(
            key.verify(&expired, "u", "e"),
            Err(EntryTokenError::Expired)
        );
        let foreign = EntryTokenKey::new(b"another key")
            .issue("u", "e", now(), now() + 60)
            .expect("issue");
        assert_eq!(
            key.verify(&foreign, "u", "e"),
            Err(EntryTokenError::Invalid)
        );
        let mut tampered = key.issue("u", "e", now(), now() + 60).expect("issue");
        tampered.push('x');
        assert_eq!(
            key.verify(&tampered, "u", "e"),
            Err(EntryTokenError::Invalid)
        );
        assert_eq!(
            key.verify("not a jwt", "u", "e"),
            Err(EntryTokenError::Invalid)
        );
    }

    #[test]
    fn a_short_entry_key_is_refused_at_start_up() {
        let error = EntryTokenKey::from_env_secret("entry-secret").expect_err("12 bytes");
        assert_eq!(error.variable, "URR_ENTRY_TOKEN_KEY");
        assert!(EntryTokenKey::from_env_secret("entry-secret-entry-secret-32byte").is_ok());
    }

    #[test]
    fn a_revocation_covers_tokens_issued_up_to_it() {
        let claims = EntryClaims {
            sub: "u".into(),
            evt: "e".into(),
            iat: 1_000,
            exp: 1_600,
            jti: "j".into(),
            typ: TOKEN_TYPE.into(),
        };
        assert!(claims.revoked_by(1_000_000));
        assert!(claims.revoked_by(1_000_500));
        assert!(!claims.revoked_by(999_999));
        assert_eq!(
            revocation_key("aurora", "u1"),
            "urr:{aurora}:entry-revoked:u1"
        );
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
