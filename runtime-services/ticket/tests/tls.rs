//! The data stores over TLS, as on AWS (ElastiCache `rediss://`, RDS with
//! `rds.force_ssl`): the stack's Redis and PostgreSQL also listen with TLS
//! under a CA of the stack's own (`scripts/stack`), and the clients the
//! services use must connect, encrypted and verified.

use redis::AsyncCommands;
use sqlx::postgres::PgPoolOptions;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"` (scripts/test does this)")
    })
}

#[tokio::test]
async fn postgres_over_tls_is_encrypted_and_verified() {
    urr_service_common::install_tls_provider();
    // sslmode=verify-full with the stack's CA: what a service gets from a
    // databaseUrlRef Secret pointing at RDS (with the RDS CA bundle).
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&env("URR_DATABASE_TLS_URL"))
        .await
        .expect("connects over TLS");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .expect("pg_stat_ssl");
    assert!(encrypted, "the session is encrypted");
    pool.close().await;
    // A real CA that did not sign the server's certificate is refused.
    let url = env("URR_DATABASE_TLS_URL");
    let (base, _) = url
        .split_once("&sslrootcert=")
        .expect("url with sslrootcert");
    let refused = PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{base}&sslrootcert={}", env("URR_STACK_OTHER_CA")))
        .await;
    assert!(refused.is_err(), "an unverified server is refused");
}

#[tokio::test]
async fn redis_over_tls_works_and_verifies_the_server() {
    urr_service_common::install_tls_provider();
    let url = env("URR_REDIS_TLS_URL");
    // As a service opens it (system roots): the stack's private CA is not
    // among them, so verification must fail rather than pass silently.
    let unverified = redis::Client::open(url.as_str()).expect("url");
    assert!(
        unverified.get_multiplexed_async_connection().await.is_err(),
        "a certificate from an unknown CA is refused"
    );
    // With the stack's CA as the root: connects, and works.
    let ca = std::fs::read(env("URR_STACK_TLS_CA")).expect("CA file");
    let client = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
    .expect("tls client");
    let mut redis = redis::aio::ConnectionManager::new(client)
        .await
        .expect("connects over TLS");
    let key = format!("urr:{{tls-test}}:{}", std::process::id());
    let _: () = redis.set_ex(&key, "over tls", 10).await.expect("set");
    let value: String = redis.get(&key).await.expect("get");
    assert_eq!(value, "over tls");
}
