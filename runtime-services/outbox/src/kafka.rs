//! Kafka client settings shared by the services, and topic creation.
//!
//! ## The connection string
//!
//! A service gets its broker connection as one string (the Event's
//! `kafkaBrokersRef` Secret, env `URR_KAFKA_BROKERS`), like the Redis and
//! PostgreSQL URLs it gets beside it, so credentials live in one Secret value
//! and nowhere else:
//!
//! | form | means |
//! |---|---|
//! | `host:9092,host2:9092` | plaintext (the local stack) |
//! | `plaintext://host:9092,…` | the same, spelled out |
//! | `ssl://host:9094,…` | TLS; the broker's certificate is verified |
//! | `sasl_ssl://USER:PASSWORD@host:9096,…` | TLS + SASL/SCRAM-SHA-512 (MSK's SCRAM listener) |
//!
//! Query parameters: `mechanism=SCRAM-SHA-512|SCRAM-SHA-256|PLAIN` (SASL
//! only), `ca=/path/ca.pem` (a CA bundle instead of the system's). User and
//! password are percent-decoded, so any character can be in a password.
//! Anything else is refused with the reason (never echoing the password).

use std::time::Duration;

use percent_encoding::percent_decode_str;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

/// Why a connection string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Kafka connection (URR_KAFKA_BROKERS): {0}")]
pub struct ConnectionError(String);

/// Why a Kafka client or the topics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// A parsed connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    pub bootstrap_servers: String,
    /// `plaintext`, `ssl` or `sasl_ssl`.
    pub security_protocol: &'static str,
    /// `(mechanism, user, password)` for `sasl_ssl`.
    pub sasl: Option<(String, String, String)>,
    pub ca_location: Option<String>,
}

impl std::fmt::Debug for Connection {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl.as_ref().map(|(m, _, _)| m))
            .field("ca_location", &self.ca_location)
            .finish()
    }
}

const MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

fn decode(part: &str, what: &str) -> Result<String, ConnectionError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ConnectionError(format!("the {what} is not valid percent-encoded UTF-8")))
}

impl Connection {
    pub fn parse(value: &str) -> Result<Self, ConnectionError> {
        let value = value.trim();
        let (scheme, rest) = match value.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("plaintext".to_owned(), value),
        };
        let security_protocol = match scheme.as_str() {
            "plaintext" => "plaintext",
            "ssl" => "ssl",
            "sasl_ssl" => "sasl_ssl",
            other => {
                return Err(ConnectionError(format!(
                    "unknown scheme {other:?}; use plaintext://, ssl:// or sasl_ssl://"
                )));
            }
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        // The credentials end at the last '@' (a password may not contain a
        // raw '@', but an encoded one is fine).
        let (credentials, hosts) = match rest.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, rest),
        };
        let servers: Vec<&str> = hosts.split(',').map(str::trim).collect();
        if servers.iter().any(|server| {
            server
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        }) {
            return Err(ConnectionError(format!(
                "brokers must be host:port[,host:port...], got {hosts:?}"
            )));
        }
        let mut mechanism = None;
        let mut ca_location = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("mechanism", m)) => mechanism = Some(m.to_ascii_uppercase()),
                Some(("ca", path)) if !path.is_empty() => {
                    ca_location = Some(decode(path, "ca path")?)
                }
                _ => {
                    return Err(ConnectionError(format!(
                        "unknown parameter {:?}; known: mechanism, ca",
                        pair.split('=').next().unwrap_or_default()
                    )));
                }
            }
        }
        let sasl = match (security_protocol, credentials) {
            ("sasl_ssl", Some(credentials)) => {
                let (user, password) = credentials.split_once(':').ok_or_else(|| {
                    ConnectionError("sasl_ssl needs USER:PASSWORD@ before the brokers".into())
                })?;
                let mechanism = mechanism.unwrap_or_else(|| MECHANISMS[0].to_owned());
                if !MECHANISMS.contains(&mechanism.as_str()) {
                    return Err(ConnectionError(format!(
                        "unknown SASL mechanism {mechanism:?}; known: {}",
                        MECHANISMS.join(", ")
                    )));
                }
                let user = decode(user, "user")?;
                if user.is_empty() {
                    return Err(ConnectionError("the SASL user is empty".into()));
                }
                Some((mechanism, user, decode(password, "password")?))
            }
            ("sasl_ssl", None) => {
                return Err(ConnectionError(
                    "sasl_ssl needs USER:PASSWORD@ before the brokers".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(ConnectionError(
                    "credentials are only used with sasl_ssl://".into(),
                ));
            }
            (_, None) if mechanism.is_some() => {
                return Err(ConnectionError(
                    "mechanism is only used with sasl_ssl://".into(),
                ));
            }
            (_, None) => None,
        };
        if security_protocol == "plaintext" && ca_location.is_some() {
            return Err(ConnectionError(
                "ca is only used with ssl:// or sasl_ssl://".into(),
            ));
        }
        Ok(Self {
            bootstrap_servers: servers.join(","),
            security_protocol,
            sasl,
            ca_location,
        })
    }

    /// A client configuration with this connection.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("security.protocol", self.security_protocol);
        if let Some((mechanism, user, password)) = &self.sasl {
            config
                .set("sasl.mechanism", mechanism)
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        match (&self.ca_location, self.security_protocol) {
            (Some(ca), _) => {
                config.set("ssl.ca.location", ca);
            }
            // librdkafka's own default is OpenSSL's compiled-in directory,
            // which a distroless image may not have; `probe` looks in the
            // usual places (/etc/ssl/certs/ca-certificates.crt and others).
            (None, "ssl" | "sasl_ssl") => {
                config.set("ssl.ca.location", "probe");
            }
            (None, _) => {}
        }
        config
    }
}

/// Producer settings: every message acknowledged by all in-sync replicas,
/// bounded delivery time so a dead broker shows up as an error, not a hang.
pub fn producer_config(connection: &str) -> Result<ClientConfig, ConnectionError> {
    let mut config = Connection::parse(connection)?.client_config();
    config
        .set("acks", "all")
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "2")
        .set("client.id", "urr-outbox-relay");
    Ok(config)
}

/// Consumer settings: offsets are committed by the caller after the effect
/// is committed in PostgreSQL (never automatically before), so a crash
/// redelivers instead of skipping.
pub fn consumer_config(connection: &str, group: &str) -> Result<ClientConfig, ConnectionError> {
    let mut config = Connection::parse(connection)?.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("enable.partition.eof", "false");
    Ok(config)
}

/// Creates `topics` (one call), treating "already exists" as success.
/// `replication` is 1 on the local stack and 3 on a production cluster (MSK
/// creates topics from Terraform there, and this is then a no-op).
pub async fn ensure_topics(
    connection: &str,
    topics: &[&str],
    partitions: i32,
    replication: i32,
) -> Result<(), SetupError> {
    let admin: AdminClient<DefaultClientContext> =
        Connection::parse(connection)?.client_config().create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::error!(%topic, ?code, "cannot create topic");
                return Err(rdkafka::error::KafkaError::AdminOp(code).into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(config: &ClientConfig, key: &str) -> Option<String> {
        config.get(key).map(str::to_owned)
    }

    #[test]
    fn a_plain_broker_list_is_plaintext() {
        let connection = Connection::parse(" 127.0.0.1:9092,b:9093 ").expect("parses");
        assert_eq!(connection.bootstrap_servers, "127.0.0.1:9092,b:9093");
        assert_eq!(connection.security_protocol, "plaintext");
        let config = connection.client_config();
        assert_eq!(
            setting(&config, "security.protocol").as_deref(),
            Some("plaintext")
        );
        assert_eq!(setting(&config, "sasl.username"), None);
        assert_eq!(setting(&config, "ssl.ca.location"), None);
        let tls = Connection::parse("ssl://b:9094")
            .expect("parses")
            .client_config();
        assert_eq!(setting(&tls, "ssl.ca.location").as_deref(), Some("probe"));
    }

    #[test]
    fn sasl_ssl_carries_decoded_credentials_and_defaults_to_scram_512() {
        let connection = Connection::parse(
            "sasl_ssl://urr:p%40ss%3Aw0rd@b-1.msk:9096,b-2.msk:9096?ca=/etc/ca.pem",
        )
        .expect("parses");
        let config = connection.client_config();
        assert_eq!(
            setting(&config, "security.protocol").as_deref(),
            Some("sasl_ssl")
        );
        assert_eq!(
            setting(&config, "sasl.mechanism").as_deref(),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(setting(&config, "sasl.username").as_deref(), Some("urr"));
        assert_eq!(
            setting(&config, "sasl.password").as_deref(),
            Some("p@ss:w0rd")
        );
        assert_eq!(
            setting(&config, "ssl.ca.location").as_deref(),
            Some("/etc/ca.pem")
        );
        assert_eq!(
            setting(&config, "bootstrap.servers").as_deref(),
            Some("b-1.msk:9096,b-2.msk:9096")
        );
        let debug = format!("{connection:?}");
        assert!(
            !debug.contains("p@ss") && !debug.contains("urr:"),
            "{debug}"
        );
        let sha256 =
            Connection::parse("SASL_SSL://u:p@b:9096?mechanism=scram-sha-256").expect("ok");
        assert_eq!(
            sha256.sasl.map(|(m, _, _)| m).as_deref(),
            Some("SCRAM-SHA-256")
        );
    }

    #[test]
    fn librdkafka_is_built_with_tls_and_scram() {
        // Creating a client checks the settings against what librdkafka was
        // built with ("... not available at build time" otherwise); it does
        // not connect yet.
        for connection in [
            "ssl://127.0.0.1:1",
            "sasl_ssl://u:p@127.0.0.1:1",
            "sasl_ssl://u:p@127.0.0.1:1?mechanism=SCRAM-SHA-256",
        ] {
            let created: Result<rdkafka::producer::BaseProducer, _> =
                producer_config(connection).expect("parses").create();
            assert!(created.is_ok(), "{connection}: {:?}", created.err());
        }
    }

    #[test]
    fn bad_connections_are_refused_with_the_reason_and_no_password() {
        for (bad, reason) in [
            ("kafka://b:9092", "unknown scheme"),
            ("b", "host:port"),
            ("b:notaport", "host:port"),
            ("sasl_ssl://b:9096", "USER:PASSWORD"),
            ("sasl_ssl://user-only@b:9096", "USER:PASSWORD"),
            (
                "sasl_ssl://u:secret@b:9096?mechanism=GSSAPI",
                "unknown SASL mechanism",
            ),
            ("ssl://u:secret@b:9094", "only used with sasl_ssl"),
            ("b:9092?ca=/x", "only used with ssl"),
            ("b:9092?mechanism=PLAIN", "only used with sasl_ssl"),
            ("ssl://b:9094?timeout=3", "unknown parameter"),
        ] {
            let error = Connection::parse(bad).expect_err(bad).to_string();
            assert!(error.contains(reason), "{bad}: {error}");
            assert!(!error.contains("secret"), "{bad}: {error}");
        }
    }
}
