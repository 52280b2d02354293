//! The origin locked to CloudFront.
//!
//! The ALB's security group only admits CloudFront's origin-facing
//! addresses, but those are shared by every CloudFront distribution: anyone
//! can point their own distribution at our ALB and bypass our edge function
//! (the tier-1 gate, WAF). So CloudFront adds a secret header to every origin
//! request (Terraform, `terraform/modules/edge/origin.tf`; the operator sets it from the Event's `spec.auth.originSecretRef`), and with `URR_ORIGIN_SECRET`
//! set the services refuse public requests without it:
//! 403 `origin-forbidden`.
//!
//! The check guards the public listener only. Exempt there: `/healthz` and
//! `/readyz`, which the load balancer's health checks and the kubelet call
//! directly, never through CloudFront. `/metrics` and `/internal/*` are not
//! on the public listener at all ([`super::split`]): the internal one, which
//! has no origin check, serves them to in-cluster callers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// The header CloudFront adds (a viewer's header of the same name is
/// overwritten by CloudFront, so a viewer cannot forge it through the edge).
pub const HEADER: &str = "x-urr-origin-verify";
/// Problem type slug of a refused request.
pub const FORBIDDEN: &str = "origin-forbidden";
/// Shorter secrets are refused at start-up: the header is the only thing
/// between a foreign distribution and the origin.
pub const MIN_SECRET_BYTES: usize = 32;

/// The expected header value, kept as its SHA-256 digest: comparing digests
/// in constant time takes the same time whatever the length of a guess.
#[derive(Clone)]
pub struct OriginSecret {
    digest: Arc<[u8; 32]>,
}

impl std::fmt::Debug for OriginSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OriginSecret(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OriginSecretError {
    #[error(
        "URR_ORIGIN_SECRET is {0} bytes long; it must be at least {MIN_SECRET_BYTES} (or unset to accept requests from anywhere)"
    )]
    TooShort(usize),
}

impl OriginSecret {
    pub fn new(secret: &str) -> Result<Self, OriginSecretError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(OriginSecretError::TooShort(secret.len()));
        }
        Ok(Self {
            digest: Arc::new(Sha256::digest(secret.as_bytes()).into()),
        })
    }

    /// Whether `value` is the secret, in constant time.
    pub fn matches(&self, value: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(value).into();
        digest.ct_eq(self.digest.as_ref()).into()
    }
}

/// Whether `path` is served without the header.
pub fn is_exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// `app` refusing public requests that lack the header.
pub fn require(app: Router, secret: OriginSecret) -> Router {
    app.layer(axum::middleware::from_fn_with_state(secret, check))
}

async fn check(State(secret): State<OriginSecret>, request: Request, next: Next) -> Response {
    if is_exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let verified = request
        .headers()
        .get(HEADER)
        .is_some_and(|value| secret.matches(value.as_bytes()));
    if verified {
        next.run(request).await
    } else {
        Problem::new(
            StatusCode::FORBIDDEN,
            FORBIDDEN,
            "Not through the edge",
            "this origin only answers requests that come through its CloudFront distribution",
        )
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &str = "origin-secret-origin-secret-0123456789";

    fn app() -> Router {
        let ok = get(|| async { "ok" });
        require(
            Router::new()
                .route("/v1/events/{event}", ok.clone())
                .route("/healthz", ok.clone())
                .route("/readyz", ok.clone())
                .route("/metrics", ok.clone())
                .route("/internal/stats", ok.clone())
                .route("/internalish", ok),
            OriginSecret::new(SECRET).expect("long enough"),
        )
    }

    async fn get_with(path: &str, header_value: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(value) = header_value {
            request = request.header(HEADER, value);
        }
        app()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("response")
    }

    #[tokio::test]
    async fn public_routes_need_the_exact_secret() {
        assert_eq!(
            get_with("/v1/events/aurora", Some(SECRET)).await.status(),
            StatusCode::OK
        );
        for refused in [
            None,
            Some(""),
            Some("wrong"),
            Some(&SECRET[..SECRET.len() - 1]),
            Some(&format!("{SECRET}x")),
        ] {
            let response = get_with("/v1/events/aurora", refused).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{refused:?}");
            assert_eq!(
                crate::server::limits::tests::problem_type(response).await,
                "https://urr.dev/problems/origin-forbidden"
            );
        }
        // Internal paths are no exemption on the public listener: an
        // unverified caller learns nothing, not even that they are absent.
        for path in ["/internalish", "/internal/stats", "/metrics"] {
            assert_eq!(
                get_with(path, None).await.status(),
                StatusCode::FORBIDDEN,
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn probes_are_exempt() {
        for path in ["/healthz", "/readyz"] {
            assert_eq!(
                get_with(path, None).await.status(),
                StatusCode::OK,
                "{path}"
            );
        }
    }

    #[test]
    fn a_short_secret_is_refused_without_printing_it() {
        let error = OriginSecret::new("short-secret").expect_err("too short");
        let message = error.to_string();
        assert!(message.contains("URR_ORIGIN_SECRET"), "{message}");
        assert!(!message.contains("short-secret"), "{message}");
    }
}
