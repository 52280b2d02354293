//! RS256 user tokens verified with keys fetched from a JWKS URL, served here
//! by a real HTTP server on loopback (a test-only RSA key in `testdata/`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use urr_service_common::tokens::user::{UserTokenError, UserTokenVerifier};

const PRIVATE_KEY: &[u8] = include_bytes!("../testdata/jwks-test-rsa.pem");
const JWKS: &str = include_str!("../testdata/jwks-test.json");

async fn jwks_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { ([("content-type", "application/json")], JWKS) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/jwks.json"), hits)
}

fn rs_token(kid: &str, sub: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let claims = json!({"sub": sub, "exp": urr_service_common::unix_now() + 600, "iss": "https://id.example.com"});
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(PRIVATE_KEY).expect("pem"),
    )
    .expect("encode")
}

#[tokio::test]
async fn rs256_tokens_verify_with_keys_from_the_jwks_url_fetched_once() {
    let (url, hits) = jwks_server().await;
    let verifier = UserTokenVerifier::rs256(url, Some("https://id.example.com"), None);
    for _ in 0..5 {
        let identity = verifier
            .verify(&rs_token("test-rsa-1", "carol"))
            .await
            .expect("valid");
        assert_eq!(identity.user_id, "carol");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the key set is cached");
    // An unknown kid triggers at most one refetch, then is refused.
    assert!(matches!(
        verifier.verify(&rs_token("rotated-away", "carol")).await,
        Err(UserTokenError::Invalid(_))
    ));
    assert!(matches!(
        verifier.verify(&rs_token("rotated-away", "carol")).await,
        Err(UserTokenError::Invalid(_))
    ));
    assert!(
        hits.load(Ordering::SeqCst) <= 2,
        "refetches are rate-limited"
    );
}

#[tokio::test]
async fn an_hs256_token_cannot_pass_as_rs256() {
    // The classic confusion attack: sign HS256 with the public key as secret.
    let (url, _) = jwks_server().await;
    let verifier = UserTokenVerifier::rs256(url, None, None);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-rsa-1".to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &json!({"sub": "mallory", "exp": urr_service_common::unix_now() + 600}),
        &EncodingKey::from_secret(JWKS.as_bytes()),
    )
    .expect("encode");
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(UserTokenError::Invalid(_))
    ));
}

#[tokio::test]
async fn wrong_issuer_and_unreachable_jwks_are_refused() {
    let (url, _) = jwks_server().await;
    let verifier = UserTokenVerifier::rs256(url, Some("https://other-issuer.example"), None);
    assert!(matches!(
        verifier.verify(&rs_token("test-rsa-1", "carol")).await,
        Err(UserTokenError::Invalid(_))
    ));
    let down = UserTokenVerifier::rs256("http://127.0.0.1:9/jwks.json", None, None);
    assert!(matches!(
        down.verify(&rs_token("test-rsa-1", "carol")).await,
        Err(UserTokenError::KeysUnavailable(_))
    ));
}
