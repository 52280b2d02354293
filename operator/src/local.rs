//! `urr-operator local`: the operator's own code paths that need no API
//! server, run against a local stack for the one-command flash sale
//! (`scripts/flash-sale`). The same validation as the API server and the
//! controllers, the same policy and serving parameters written to the
//! queue's Redis, the same edge entry published to the KeyValueStore (the
//! emulator), and the same per-service configuration the Event controller
//! puts in the ConfigMaps, written as env files for local processes.
//!
//! What differs from a cluster, on purpose and printed: the sale window is
//! moved to start `--open-in` from now (the example's date is fixed), rates
//! can be raised so a local crowd finishes in minutes, `--max-places` can
//! shrink the seat map so a small crowd sells the house out, Secrets are
//! generated per run (written 0600, never printed), and the services listen
//! on loopback. None of it exists outside this subcommand: the CRDs, the
//! controllers and what they apply to a cluster never see these options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use serde_json::json;
use urr_crds::event::Section;
use urr_crds::manifest::check_manifest;
use urr_crds::validation::Validate;
use urr_crds::{Event, WaitingRoom};
use urr_service_common::policy;

use crate::children::{self, Defaults, ServiceKind};
use crate::edge::{self, EdgeEntry};
use crate::kvs::KvsWriter;
use crate::waiting_room::{activation, edge_changes, policy_for, serving_for};

/// What the local run needs to know.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// The Event manifest.
    #[arg(long, default_value = "examples/event.yaml")]
    pub event: PathBuf,
    /// The WaitingRoom manifest.
    #[arg(long, default_value = "examples/waitingroom.yaml")]
    pub room: PathBuf,
    /// Where the env files and run.json go.
    #[arg(long)]
    pub out: PathBuf,
    /// Seconds from now until sales open.
    #[arg(long, default_value_t = 20)]
    pub open_in: i64,
    /// Tier-2 admissions per second (the room's `usersPerSecond` when unset).
    #[arg(long)]
    pub users_per_second: Option<u32>,
    /// Concurrent active users (the room's `maxActiveUsers` when unset).
    #[arg(long)]
    pub max_active_users: Option<u32>,
    /// Tier-1 numbers served per second (the room's serving rate when unset).
    #[arg(long)]
    pub serving_per_second: Option<u32>,
    /// Local runs only: shrink the Event's seat map to at most this many
    /// places (every section kept, smaller in proportion) so that a small
    /// crowd sells the house out and contends for the last places. The
    /// manifest is not changed and nothing of this reaches a cluster: the
    /// CRD has no such field and `urr-operator run` no such option.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_places: Option<u64>,
    #[arg(long, env = "URR_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    #[arg(long, env = "URR_KAFKA_BROKERS")]
    pub kafka_brokers: String,
    #[arg(long, env = "URR_KVS_ENDPOINT")]
    pub kvs_endpoint: String,
    #[arg(long, env = "URR_KVS_ARN")]
    pub kvs_arn: String,
    #[arg(long, hide_env_values = true)]
    pub ticket_database_url: String,
    #[arg(long, hide_env_values = true)]
    pub payment_database_url: String,
    #[arg(long, default_value = "127.0.0.1:18081")]
    pub queue_listen: String,
    #[arg(long, default_value = "127.0.0.1:18082")]
    pub ticket_listen: String,
    #[arg(long, default_value = "127.0.0.1:18083")]
    pub payment_listen: String,
    /// Namespace the objects pretend to live in.
    #[arg(long, default_value = "urr-demo")]
    pub namespace: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("KeyValueStore: {0}")]
    Kvs(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn read(path: &Path) -> Result<String, LocalError> {
    std::fs::read_to_string(path).map_err(|source| LocalError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Checks a manifest as the API server would, then parses its one object.
fn load<T: serde::de::DeserializeOwned + Validate>(path: &Path) -> Result<T, LocalError> {
    let text = read(path)?;
    let invalid = |detail: String| LocalError::Invalid {
        path: path.display().to_string(),
        detail,
    };
    for report in check_manifest(&text).map_err(|e| invalid(e.to_string()))? {
        let lines: Vec<String> = report
            .server
            .iter()
            .chain(&report.operator)
            .map(ToString::to_string)
            .collect();
        if !lines.is_empty() {
            return Err(invalid(lines.join("; ")));
        }
    }
    let object: T = serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    object
        .validate()
        .map_err(|violations| invalid(violations.to_string()))?;
    Ok(object)
}

fn secret_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `KEY='value'` lines a shell can `source` (values single-quoted).
fn env_file(values: &BTreeMap<String, String>) -> String {
    values
        .iter()
        .map(|(key, value)| format!("{key}='{}'\n", value.replace('\'', r"'\''")))
        .collect()
}

fn write_private(path: &Path, contents: &str) -> Result<(), LocalError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let error = |source| LocalError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut file = options.open(path).map_err(error)?;
    file.write_all(contents.as_bytes()).map_err(error)
}

/// Shrinks `sections` to at most `max` places in all (for `--max-places`):
/// each section to its share of `max` (none below one place; a seated one
/// to the rows × seats per row within its old shape that come closest to
/// the share), then the largest trimmed until the total fits. `Ok(false)`
/// when it already fits.
pub fn scale_seat_map(sections: &mut [Section], max: u64) -> Result<bool, String> {
    let total: u64 = sections.iter().map(Section::capacity).sum();
    if total <= max {
        return Ok(false);
    }
    if max < sections.len() as u64 {
        return Err(format!(
            "--max-places {max} is fewer than the {} sections (each keeps at least one place)",
            sections.len()
        ));
    }
    let factor = max as f64 / total as f64;
    for section in sections.iter_mut() {
        let share = ((section.capacity() as f64 * factor).floor() as u32).max(1);
        if let Some(capacity) = section.capacity.as_mut() {
            *capacity = share;
        } else if let (Some(rows), Some(per_row)) =
            (section.rows.as_mut(), section.seats_per_row.as_mut())
        {
            // The most seats up to the share; of equals, the rows nearest
            // the old shape scaled down.
            let shape = f64::from(*rows) * factor.sqrt();
            let (best_rows, best_per_row) = (1..=*rows)
                .map(|r| (r, (share / r).clamp(1, *per_row)))
                .filter(|(r, p)| r * p <= share.max(1))
                .max_by(|a, b| {
                    (a.0 * a.1).cmp(&(b.0 * b.1)).then_with(|| {
                        (f64::from(b.0) - shape)
                            .abs()
                            .total_cmp(&(f64::from(a.0) - shape).abs())
                    })
                })
                .unwrap_or((1, 1));
            *rows = best_rows;
            *per_row = best_per_row;
        }
    }
    // A section kept at one place can overshoot the share it had.
    while sections.iter().map(Section::capacity).sum::<u64>() > max {
        let Some(largest) = sections
            .iter_mut()
            .filter(|s| s.capacity() > 1)
            .max_by_key(|s| s.capacity())
        else {
            break;
        };
        if let Some(capacity) = largest.capacity.as_mut() {
            *capacity -= 1;
        } else if let (Some(rows), Some(per_row)) =
            (largest.rows.as_mut(), largest.seats_per_row.as_mut())
        {
            // More than one place: the larger side is at least 2.
            if *rows >= *per_row {
                *rows -= 1;
            } else {
                *per_row -= 1;
            }
        }
    }
    Ok(true)
}

/// What `local` did, for the caller (and `run.json`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRun {
    pub event: String,
    pub room: String,
    pub room_id: String,
    pub sales_open_at: i64,
    pub enforce_from: i64,
    pub users_per_second: u32,
    pub max_active_users: u32,
    pub serving: urr_service_common::serving::ServingParams,
    pub capacity: u64,
    /// Places in the manifest's seat map (more than `capacity` when
    /// `--max-places` shrank it for this run).
    pub manifest_capacity: u64,
    pub queue_url: String,
    pub ticket_url: String,
    pub payment_url: String,
    pub protected_path: String,
    pub vwr_key_id: String,
}

pub async fn run(args: &LocalArgs) -> Result<LocalRun, LocalError> {
    let mut event: Event = load(&args.event)?;
    let mut room: WaitingRoom = load(&args.room)?;
    let name = event.metadata.name.clone().unwrap_or_default();
    let room_name = room.metadata.name.clone().unwrap_or_default();
    event.metadata.namespace = Some(args.namespace.clone());
    event.metadata.uid = Some(crate::render::OFFLINE_UID.to_owned());
    room.metadata.namespace = Some(args.namespace.clone());

    // The sale window moves to `open_in` from now; the room's schedule moves with it.
    let now = Timestamp::now();
    let open = now + SignedDuration::from_secs(args.open_in);
    let shift = open.duration_since(event.spec.sales_open_at.0);
    event.spec.sales_close_at = Time(event.spec.sales_close_at.0 + shift);
    event.spec.sales_open_at = Time(open);
    let activation = &mut room.spec.activation;
    activation.start_at = activation.start_at.take().map(|t| Time(t.0 + shift));
    activation.end_at = activation.end_at.take().map(|t| Time(t.0 + shift));
    if let Some(edge) = room.spec.edge.as_mut() {
        // Nothing propagates on a laptop: the gate switches when the room does.
        edge.propagation_margin_seconds = 0;
    }
    let admission = &mut room.spec.admission;
    if let Some(rate) = args.users_per_second {
        admission.users_per_second = rate;
    }
    if let Some(max) = args.max_active_users {
        admission.max_active_users = max;
    }
    if let Some(per_second) = args.serving_per_second {
        admission.serving_rate.per_interval = per_second;
        admission.serving_rate.interval_seconds = 1;
    }
    let manifest_capacity: u64 = event
        .spec
        .seat_map
        .sections
        .iter()
        .map(Section::capacity)
        .sum();
    if let Some(max) = args.max_places {
        let invalid = |detail: String| LocalError::Invalid {
            path: args.event.display().to_string(),
            detail,
        };
        if scale_seat_map(&mut event.spec.seat_map.sections, max).map_err(invalid)? {
            // The smaller map must still be a valid Event.
            event
                .validate()
                .map_err(|violations| invalid(format!("scaled seat map: {violations}")))?;
            eprintln!(
                "urr-operator local: local run only: the seat map is scaled down to {} places (the manifest has {manifest_capacity}; the manifest and any cluster are unchanged)",
                event
                    .spec
                    .seat_map
                    .sections
                    .iter()
                    .map(Section::capacity)
                    .sum::<u64>()
            );
        }
    }

    let (decision, _) = activation::decide(&room.spec, &Default::default(), now, None, None);
    let policy = policy_for(&room.spec, &event.spec, &decision);
    let serving = serving_for(&room.spec, &decision, now);

    // Policy and serving parameters, where the queue service reads them.
    // The event's queue keys from an earlier local run go first: a local run
    // is a fresh sale.
    let client = redis::Client::open(args.redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let pattern = format!("urr:{{{name}}}:*");
    let mut stale: Vec<String> = Vec::new();
    {
        let mut iter: redis::AsyncIter<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter_async(&mut redis)
            .await?;
        while let Some(key) = futures::StreamExt::next(&mut iter).await {
            stale.push(key?);
        }
    }
    for chunk in stale.chunks(500) {
        redis::cmd("DEL")
            .arg(chunk)
            .query_async::<()>(&mut redis)
            .await?;
    }
    redis::pipe()
        .atomic()
        .hset_multiple(policy::policy_key(&name), &policy.to_fields())
        .ignore()
        .hset_multiple(
            policy::serving_key(&name),
            &policy::serving_fields(&serving),
        )
        .ignore()
        .query_async::<()>(&mut redis)
        .await?;

    // Secrets of this run.
    let secrets = BTreeMap::from([
        ("URR_USER_JWT_SECRET".to_owned(), secret_hex()),
        ("URR_ENTRY_TOKEN_KEY".to_owned(), secret_hex()),
        ("URR_SERVICE_TOKEN".to_owned(), secret_hex()),
        ("URR_VWR_SIGNING_KEY".to_owned(), secret_hex()),
        ("URR_SANDBOX_WEBHOOK_SECRET".to_owned(), secret_hex()),
    ]);

    // The edge entry, published to the KeyValueStore as the controller does.
    let edge_spec = room.spec.edge.clone().ok_or_else(|| LocalError::Invalid {
        path: args.room.display().to_string(),
        detail: "the local flash sale needs spec.edge".into(),
    })?;
    let room_key = edge::room_key(&args.namespace, &room_name);
    let room_id = format!("{}/{room_name}", args.namespace);
    let entry = EdgeEntry {
        v: edge::SCHEMA_VERSION,
        room: room_id.clone(),
        active: decision.active,
        enforce_from: decision.enforce_from.map_or(0, |t| t.as_second()),
        protected: room.spec.paths.protected.clone(),
        bypass: room.spec.paths.bypass.clone(),
        waiting_page: format!("{}{}", edge_spec.waiting_page_path, room_name),
        serving,
        kid: edge_spec.signing_key_id.clone(),
    };
    let writer = KvsWriter::new(&args.kvs_arn, Some(&args.kvs_endpoint)).await;
    let mut shards = std::collections::HashMap::new();
    let mut keys: Vec<String> = room
        .spec
        .paths
        .protected
        .iter()
        .map(|p| edge::shard_key(p))
        .collect();
    keys.push(edge::shard_key("/"));
    keys.sort();
    keys.dedup();
    for key in keys {
        let value = writer
            .get(&key)
            .await
            .map_err(|e| LocalError::Kvs(e.to_string()))?;
        shards.insert(key, value);
    }
    let signing_hex: String = secrets["URR_VWR_SIGNING_KEY"]
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let changes = edge_changes(
        &room_key,
        Some((&entry, signing_hex)),
        &room.spec.paths.protected,
        &shards,
    )
    .map_err(|e| LocalError::Kvs(e.to_string()))?;
    writer
        .apply(&changes)
        .await
        .map_err(|e| LocalError::Kvs(e.to_string()))?;

    // Per-service configuration: the ConfigMap data the controller builds,
    // plus what the Secrets and the cluster would provide.
    std::fs::create_dir_all(&args.out).map_err(|source| LocalError::Write {
        path: args.out.display().to_string(),
        source,
    })?;
    let url = |listen: &str| format!("http://{listen}");
    let defaults = Defaults {
        image_repository: "local".into(),
        image_tag: "local".into(),
    };
    for kind in [
        ServiceKind::Queue,
        ServiceKind::Ticket,
        ServiceKind::Payment,
    ] {
        let built =
            children::build(&event, kind, 1, &defaults).map_err(|e| LocalError::Invalid {
                path: args.event.display().to_string(),
                detail: e.to_string(),
            })?;
        let mut values: BTreeMap<String, String> =
            built.config_map.data.clone().unwrap_or_default();
        for variable in kind.runtime(&event.spec).env.iter() {
            if let Some(value) = &variable.value {
                values.insert(variable.name.clone(), value.clone());
            }
        }
        values.insert("URR_LOG_FORMAT".into(), "text".into());
        values.insert("URR_QUEUE_URL".into(), url(&args.queue_listen));
        values.insert("URR_TICKET_URL".into(), url(&args.ticket_listen));
        values.insert("URR_PAYMENT_URL".into(), url(&args.payment_listen));
        for key in [
            "URR_USER_JWT_SECRET",
            "URR_ENTRY_TOKEN_KEY",
            "URR_SERVICE_TOKEN",
        ] {
            values.insert(key.into(), secrets[key].clone());
        }
        match kind {
            ServiceKind::Queue => {
                values.insert("URR_LISTEN".into(), args.queue_listen.clone());
                values.insert("URR_REDIS_URL".into(), args.redis_url.clone());
                values.insert("URR_ROOM_NAME".into(), room_name.clone());
                values.insert("URR_ROOM_ID".into(), room_id.clone());
                values.insert(
                    "URR_VWR_SIGNING_KEY".into(),
                    secrets["URR_VWR_SIGNING_KEY"].clone(),
                );
                values.insert("URR_VWR_KEY_ID".into(), edge_spec.signing_key_id.clone());
                // Plain HTTP on loopback; the cluster default stays Secure.
                values.insert("URR_COOKIE_SECURE".into(), "false".into());
                // Every local buyer comes from 127.0.0.1.
                values.insert("URR_JOIN_LIMIT_PER_IP".into(), "1000000000".into());
            }
            ServiceKind::Ticket => {
                values.insert("URR_LISTEN".into(), args.ticket_listen.clone());
                values.insert("URR_REDIS_URL".into(), args.redis_url.clone());
                values.insert("URR_DATABASE_URL".into(), args.ticket_database_url.clone());
                values.insert("URR_KAFKA_BROKERS".into(), args.kafka_brokers.clone());
            }
            ServiceKind::Payment => {
                values.insert("URR_LISTEN".into(), args.payment_listen.clone());
                values.insert("URR_DATABASE_URL".into(), args.payment_database_url.clone());
                values.insert("URR_KAFKA_BROKERS".into(), args.kafka_brokers.clone());
                values.insert("URR_PUBLIC_URL".into(), url(&args.payment_listen));
                values.insert(
                    "URR_SANDBOX_WEBHOOK_SECRET".into(),
                    secrets["URR_SANDBOX_WEBHOOK_SECRET"].clone(),
                );
                values.insert("URR_SANDBOX_LATENCY_MS".into(), "50".into());
            }
        }
        write_private(
            &args.out.join(format!("{}.env", kind.as_str())),
            &env_file(&values),
        )?;
    }
    // What the load generator signs buyers' user tokens with (and the
    // claims the services check). Not the edge key: the load checks passes
    // with the key published to the KeyValueStore, as the edge does.
    let mut load_secrets = BTreeMap::from([(
        "URR_USER_JWT_SECRET".to_owned(),
        secrets["URR_USER_JWT_SECRET"].clone(),
    )]);
    let jwt = &event.spec.auth.user_jwt;
    if let Some(issuer) = &jwt.issuer {
        load_secrets.insert("URR_USER_JWT_ISSUER".into(), issuer.clone());
    }
    if let Some(audience) = &jwt.audience {
        load_secrets.insert("URR_USER_JWT_AUDIENCE".into(), audience.clone());
    }
    write_private(&args.out.join("load.env"), &env_file(&load_secrets))?;

    let summary = LocalRun {
        event: name,
        room: room_name,
        room_id,
        sales_open_at: open.as_second(),
        enforce_from: entry.enforce_from,
        users_per_second: room.spec.admission.users_per_second,
        max_active_users: room.spec.admission.max_active_users,
        serving,
        capacity: event
            .spec
            .seat_map
            .sections
            .iter()
            .map(|s| s.capacity())
            .sum(),
        manifest_capacity,
        queue_url: url(&args.queue_listen),
        ticket_url: url(&args.ticket_listen),
        payment_url: url(&args.payment_listen),
        protected_path: room
            .spec
            .paths
            .protected
            .first()
            .cloned()
            .unwrap_or_default(),
        vwr_key_id: edge_spec.signing_key_id.clone(),
    };
    let json = serde_json::to_string_pretty(&json!(summary)).unwrap_or_default();
    write_private(&args.out.join("run.json"), &json)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_quote_values_a_shell_reads_back_exactly() {
        let values = BTreeMap::from([
            (
                "A".to_owned(),
                r#"{"json": "with 'quotes' and $dollars"}"#.to_owned(),
            ),
            ("B".to_owned(), "plain".to_owned()),
        ]);
        let file = env_file(&values);
        let dir = std::env::temp_dir().join(format!("urr-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.env");
        std::fs::write(&path, &file).expect("write");
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -a; . {}; printf '%s\\n%s' \"$A\" \"$B\"",
                path.display()
            ))
            .output()
            .expect("bash");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{}\nplain", values["A"])
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn example_sections() -> Vec<Section> {
        let event: Event = load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/event.yaml"
        )))
        .expect("the example is valid");
        event.spec.seat_map.sections
    }

    fn total(sections: &[Section]) -> u64 {
        sections.iter().map(Section::capacity).sum()
    }

    #[test]
    fn max_places_shrinks_every_section_in_proportion_and_fits() {
        let original = example_sections();
        assert_eq!(total(&original), 13_480);
        for max in [18, 19, 100, 1_000, 2_500, 13_479] {
            let mut sections = original.clone();
            assert_eq!(scale_seat_map(&mut sections, max), Ok(true), "{max}");
            let places = total(&sections);
            assert!(places <= max, "{max}: {places}");
            // Close to the target, not just under it (floors lose a little).
            assert!(places as f64 >= max as f64 * 0.75, "{max}: {places}");
            assert_eq!(sections.len(), original.len());
            for (scaled, before) in sections.iter().zip(&original) {
                assert_eq!(scaled.id, before.id);
                assert_eq!(scaled.price, before.price);
                assert!(scaled.capacity() >= 1 && scaled.capacity() <= before.capacity());
                // A section keeps its kind.
                assert_eq!(scaled.capacity.is_some(), before.capacity.is_some());
                assert_eq!(scaled.rows.is_some(), before.rows.is_some());
            }
        }
        let mut sections = original.clone();
        scale_seat_map(&mut sections, 1_000).expect("fits");
        // Standing 1,500 of 13,480 → 111 of 1,000; seated 750 → 55 (5 × 11, the
        // shape nearest 25 × 30 scaled by √(1,000 / 13,480)).
        assert_eq!(sections[0].capacity, Some(111));
        assert_eq!(
            (sections[2].rows, sections[2].seats_per_row),
            (Some(5), Some(11))
        );
        assert_eq!(total(&sections), 2 * 111 + 8 * 55 + 8 * 40);
    }

    #[test]
    fn max_places_leaves_a_small_map_alone_and_refuses_fewer_places_than_sections() {
        let mut sections = example_sections();
        assert_eq!(scale_seat_map(&mut sections, 13_480), Ok(false));
        assert_eq!(scale_seat_map(&mut sections, 20_000), Ok(false));
        assert_eq!(sections, example_sections());
        assert!(scale_seat_map(&mut sections, 17).is_err());
    }

    #[test]
    fn secrets_are_fresh_and_long() {
        let one = secret_hex();
        assert_eq!(one.len(), 64);
        assert_ne!(one, secret_hex());
    }
}
