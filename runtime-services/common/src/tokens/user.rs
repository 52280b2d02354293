//! User JWTs from the identity provider: HS256 with a shared secret (as the
//! seed's auth service issued them) or RS256 with keys from a JWKS URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::RwLock;

/// A service state that verifies user JWTs, and the error its routes
/// refuse with (each service maps an unavailable JWKS to its own 503).
pub trait UserTokenState {
    type Rejection: From<UserTokenError> + axum::response::IntoResponse;
    fn users(&self) -> &UserTokenVerifier;
}

/// The signed-in caller's user id (the JWT's `sub`), as an extractor: a
/// request without a valid user JWT is refused with the service's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn(pub String);

impl<S> axum::extract::FromRequestParts<S> for SignedIn
where
    S: UserTokenState + Send + Sync,
{
    type Rejection = S::Rejection;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let identity = state.users().verify_headers(&parts.headers).await?;
        Ok(SignedIn(identity.user_id))
    }
}

/// Who the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    pub user_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserTokenError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

/// How to check user tokens, with a cache of tokens already verified.
///
/// A waiting buyer polls with the same token every few seconds; checking its
/// signature once and remembering `(user, exp)` until it expires saves the
/// decode and HMAC/RSA work on every poll. A token only enters the cache after
/// a full verification, and leaves it at its `exp`, so the cache never accepts
/// what verification would refuse.
#[derive(Clone, Debug)]
pub struct UserTokenVerifier {
    method: Method,
    verified: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>>,
}

/// Tokens remembered at most; the cache is cleared when full (a crude but
/// bounded policy: a miss only costs one verification).
const MAX_CACHED_TOKENS: usize = 200_000;

#[derive(Clone)]
enum Method {
    Hs256 {
        key: DecodingKey,
        validation: Validation,
    },
    Rs256 {
        jwks: Arc<JwksCache>,
        validation: Validation,
    },
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Hs256 { .. } => f.write_str("Hs256(..)"),
            Method::Rs256 { jwks, .. } => write!(f, "Rs256({})", jwks.url),
        }
    }
}

fn validation(algorithm: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = 30; // clock skew between the identity provider and us
    validation.set_required_spec_claims(&["exp", "sub"]);
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
    }
    match audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation
}

impl UserTokenVerifier {
    fn with(method: Method) -> Self {
        Self {
            method,
            verified: Arc::default(),
        }
    }

    pub fn hs256(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Self {
        Self::with(Method::Hs256 {
            key: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256, issuer, audience),
        })
    }

    pub fn rs256(
        jwks_url: impl Into<String>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        Self::with(Method::Rs256 {
            jwks: Arc::new(JwksCache::new(jwks_url.into())),
            validation: validation(Algorithm::RS256, issuer, audience),
        })
    }

    /// Verifies the `Authorization` header of a request, if it has one
    /// that is text.
    pub async fn verify_headers(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<UserIdentity, UserTokenError> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.verify_header(header).await
    }

    /// Verifies the value of an `Authorization` header (`Bearer <jwt>`).
    pub async fn verify_header(
        &self,
        header: Option<&str>,
    ) -> Result<UserIdentity, UserTokenError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(UserTokenError::Missing)?;
        self.verify(token).await
    }

    pub async fn verify(&self, token: &str) -> Result<UserIdentity, UserTokenError> {
        let now = crate::unix_now();
        if let Some(user_id) = self.cached(token, now) {
            return Ok(UserIdentity { user_id });
        }
        let map_error = |error: jsonwebtoken::errors::Error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => UserTokenError::Expired,
            _ => UserTokenError::Invalid(error.to_string()),
        };
        let claims = match &self.method {
            Method::Hs256 { key, validation } => {
                jsonwebtoken::decode::<Claims>(token, key, validation)
                    .map_err(map_error)?
                    .claims
            }
            Method::Rs256 { jwks, validation } => {
                let header = jsonwebtoken::decode_header(token).map_err(map_error)?;
                let kid = header
                    .kid
                    .ok_or_else(|| UserTokenError::Invalid("token has no kid".into()))?;
                let key = jwks.key(&kid).await?;
                jsonwebtoken::decode::<Claims>(token, &key, validation)
                    .map_err(map_error)?
                    .claims
            }
        };
        if claims.sub.is_empty() || claims.sub.len() > 128 {
            return Err(UserTokenError::Invalid(
                "sub must be 1..=128 characters".into(),
            ));
        }
        self.remember(token, &claims.sub, claims.exp);
        Ok(UserIdentity {
            user_id: claims.sub,
        })
    }

    fn cached(&self, token: &str, now: i64) -> Option<String> {
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(token)
            .filter(|(_, exp)| now < *exp)
            .map(|(user, _)| user.clone())
    }

    fn remember(&self, token: &str, user: &str, exp: i64) {
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(token.to_owned(), (user.to_owned(), exp));
    }
}

/// The identity provider's key set, fetched on first use and again when a
/// token names a key we do not know (key rotation), at most every 30 s so a
/// flood of forged `kid`s cannot hammer the provider.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    state: RwLock<(Option<JwkSet>, Option<Instant>)>,
}

crate::debug_fields!(JwksCache { url });

const MIN_REFRESH: Duration = Duration::from_secs(30);

impl JwksCache {
    fn new(url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            url,
            client,
            state: RwLock::new((None, None)),
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, UserTokenError> {
        if let Some(key) = self.cached(kid).await {
            return key;
        }
        let mut state = self.state.write().await;
        let stale = state
            .1
            .is_none_or(|fetched| fetched.elapsed() >= MIN_REFRESH);
        if stale {
            let fetched = self
                .client
                .get(&self.url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| UserTokenError::KeysUnavailable(e.to_string()))?
                .json::<JwkSet>()
                .await
                .map_err(|e| UserTokenError::KeysUnavailable(e.to_string()))?;
            *state = (Some(fetched), Some(Instant::now()));
        }
        drop(state);
        self.cached(kid)
            .await
            .unwrap_or_else(|| Err(UserTokenError::Invalid(format!("unknown key id {kid}"))))
    }

    async fn cached(&self, kid: &str) -> Option<Result<DecodingKey, UserTokenError>> {
        let state = self.state.read().await;
        let jwk = state.0.as_ref()?.find(kid)?;
        Some(DecodingKey::from_jwk(jwk).map_err(|e| UserTokenError::Invalid(e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn hs_token(secret: &[u8], sub: &str, exp: i64) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": sub, "exp": exp}),
            &EncodingKey::from_secret(secret),
        )
        .expect("encode")
    }

    #[tokio::test]
    async fn hs256_tokens_verify_and_bad_ones_are_refused() {
        let verifier = UserTokenVerifier::hs256(b"user-secret", None, None);
        let now = crate::unix_now();
        let identity = verifier
            .verify_header(Some(&format!(
                "Bearer {}",
                hs_token(b"user-secret", "alice", now + 60)
            )))
            .await
            .expect("valid");
        assert_eq!(identity.user_id, "alice");
        assert!(matches!(
            verifier.verify_header(None).await,
            Err(UserTokenError::Missing)
        ));
        assert!(matches!(
            verifier.verify_header(Some("Basic abc")).await,
            Err(UserTokenError::Missing)
        ));
        assert!(matches!(
            verifier
                .verify(&hs_token(b"user-secret", "a", now - 120))
                .await,
            Err(UserTokenError::Expired)
        ));
        assert!(matches!(
            verifier.verify(&hs_token(b"other", "a", now + 60)).await,
            Err(UserTokenError::Invalid(_))
        ));
    }
}

/// How a service verifies user JWTs, as command-line flags with environment
/// fallbacks (`#[command(flatten)]` into each service's config): exactly one
/// of an HS256 secret and an RS256 JWKS URL, plus the optional claims.
#[derive(Debug, Clone, clap::Args)]
pub struct UserJwtArgs {
    /// HS256 secret of user JWTs (mutually exclusive with --user-jwks-url).
    #[arg(
        long,
        env = "URR_USER_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "user_jwks_url"
    )]
    pub user_jwt_secret: Option<String>,
    /// JWKS URL of the identity provider for RS256 user JWTs.
    #[arg(long, env = "URR_USER_JWKS_URL")]
    pub user_jwks_url: Option<String>,
    #[arg(long, env = "URR_USER_JWT_ISSUER")]
    pub user_jwt_issuer: Option<String>,
    #[arg(long, env = "URR_USER_JWT_AUDIENCE")]
    pub user_jwt_audience: Option<String>,
}

/// Why the user-JWT flags describe no verifier.
#[derive(Debug, thiserror::Error)]
pub enum UserJwtConfigError {
    #[error("set exactly one of URR_USER_JWT_SECRET (HS256) and URR_USER_JWKS_URL (RS256)")]
    NotExactlyOne,
    #[error(transparent)]
    ShortSecret(#[from] super::key_length::KeyTooShort),
}

impl UserJwtArgs {
    /// The verifier these flags describe, or why they describe none. An
    /// HS256 secret under 32 bytes is refused: it can be brute-forced from
    /// one token, and then anyone is anyone.
    pub fn verifier(&self) -> Result<UserTokenVerifier, UserJwtConfigError> {
        let issuer = self.user_jwt_issuer.as_deref();
        let audience = self.user_jwt_audience.as_deref();
        match (&self.user_jwt_secret, &self.user_jwks_url) {
            (Some(secret), None) => Ok(UserTokenVerifier::hs256(
                super::key_length::require_min_length("URR_USER_JWT_SECRET", secret)?,
                issuer,
                audience,
            )),
            (None, Some(url)) => Ok(UserTokenVerifier::rs256(url.clone(), issuer, audience)),
            _ => Err(UserJwtConfigError::NotExactlyOne),
        }
    }
}

#[cfg(test)]
mod args_tests {
    use super::*;

    fn args(secret: &str) -> UserJwtArgs {
        UserJwtArgs {
            user_jwt_secret: Some(secret.to_owned()),
            user_jwks_url: None,
            user_jwt_issuer: None,
            user_jwt_audience: None,
        }
    }

    #[test]
    fn a_short_hs256_secret_is_refused_naming_the_variable() {
        let error = args("user-secret").verifier().expect_err("11 bytes");
        let message = error.to_string();
        assert!(message.contains("URR_USER_JWT_SECRET"), "{message}");
        assert!(!message.contains("user-secret"), "{message}");
        assert!(
            args("user-secret-user-secret-user-secret")
                .verifier()
                .is_ok()
        );
    }
}
