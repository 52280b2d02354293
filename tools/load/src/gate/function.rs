//! The whole CloudFront function (`handler` in `edge-functions/gate.js`) run
//! on a KeyValueStore's contents: what a viewer request becomes. Unlike
//! [`super::EdgeView`], which refuses a broken publication so a load run
//! stops, this fails open exactly as the edge does (a missing or malformed
//! entry passes the request), because it is the reference the shared
//! decision vectors are computed with.

use serde::{Deserialize, Serialize};
use urr_service_common::edge::{self, EdgeEntry, IndexShard, SCHEMA_VERSION};
use urr_service_common::tokens::invite;
use urr_service_common::tokens::vwr::VwrKey;

use super::decide::{Decision, decide, normalize, route, shard_segments};
use super::parse_key;

/// A viewer request as the vectors describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub uri: String,
    /// The `Host` header; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The `urr-vwr-token` cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// The `urr-invite` query parameter (an invite code); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
    /// The `Accept` header; `text/html` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<String>,
}

/// What the function answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    /// On to the origin, with this URI.
    Pass { uri: String },
    /// Held: `302` to the waiting page (browsers) or `429` (API clients).
    Wait {
        status: u16,
        /// `closed` (the sale is), `no-token`, `not-served`, or why the pass was refused
        /// (`malformed`, `unknown-key`, `bad-signature`, `expired`, `wrong-room`).
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
}

/// `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )`
/// percent-encoded as UTF-8.
pub fn encode_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn wants_json(accept: &str) -> bool {
    accept.contains("application/json") && !accept.contains("text/html")
}

/// An entry the edge can use: it parses as [`EdgeEntry`] (what `usable`
/// checks in `gate.js`) and has the schema version the edge reads.
fn usable(value: Option<String>) -> Option<EdgeEntry> {
    value
        .and_then(|v| serde_json::from_str::<EdgeEntry>(&v).ok())
        .filter(|e| e.v == SCHEMA_VERSION)
}

/// Runs the function on `request` at `now` with the store `kvs` (a missing
/// key is `None`, as a KVS miss).
pub fn run(kvs: impl Fn(&str) -> Option<String>, request: &Request, now: i64) -> Outcome {
    let uri = normalize(&request.uri);
    let pass = || Outcome::Pass { uri: uri.clone() };
    let Some(root) =
        kvs(&edge::shard_key("/")).and_then(|v| serde_json::from_str::<IndexShard>(&v).ok())
    else {
        return pass();
    };
    // A shard the root lists but that cannot be read counts as empty.
    let shards: Vec<IndexShard> = shard_segments(&root, &uri)
        .iter()
        .map(|segment| IndexShard::decode(kvs(&format!("wr/p/{segment}")).as_deref()))
        .collect();
    let host = request.host.as_deref().map(edge::normalize_host);
    let routed = route(&root, &shards, host.as_deref(), &uri, |key| {
        usable(kvs(key)).is_some_and(|e| e.case_insensitive)
    });
    let Some(entry) = routed.and_then(|key| usable(kvs(&key))) else {
        return pass();
    };
    // Only the keys the room lists, at its own path; a missing, empty or
    // non-hex value is no key (`unknown-key`), never an empty HMAC key.
    let keys: Vec<VwrKey> = entry
        .kids
        .iter()
        .filter_map(|kid| {
            let key = edge::key_key(&entry.room, kid);
            parse_key(&key, kid, kvs(&key).as_deref()).ok()
        })
        .collect();
    let reason = match decide(&entry, &keys, &uri, request.cookie.as_deref(), now) {
        Decision::Open(_) | Decision::Served { .. } => return pass(),
        Decision::Closed => "closed",
        Decision::Wait {
            refused: Some(error),
            ..
        } => error.outcome(),
        Decision::Wait {
            number: Some(_), ..
        } => "not-served",
        Decision::Wait { .. } => "no-token",
    };
    // An invite code on a held request (`evaluate` in `gate.js`): refused
    // at the edge when forged or expired, else on to the waiting page.
    let (reason, invite) = match &request.invite {
        None => (reason.to_owned(), None),
        Some(code) => match invite::verify(&keys, code, &entry.room, now) {
            Ok(_) => ("invite".to_owned(), Some(code.as_str())),
            Err(error) => (format!("invite-{}", error.outcome()), None),
        },
    };
    let refused = reason.starts_with("invite-");
    if wants_json(request.accept.as_deref().unwrap_or("text/html")) {
        return Outcome::Wait {
            status: if reason == "closed" || refused {
                403
            } else {
                429
            },
            reason,
            location: None,
        };
    }
    let back = match &request.invite {
        Some(code) => format!("{uri}?urr-invite={}", encode_uri_component(code)),
        None => uri.clone(),
    };
    let pre = match (invite, refused) {
        (Some(code), _) => format!("urr-invite={}&", encode_uri_component(code)),
        (None, true) => format!("urr-invite-refused={}&", &reason["invite-".len()..]),
        (None, false) => String::new(),
    };
    Outcome::Wait {
        status: 302,
        location: Some(format!(
            "{}?{pre}return={}",
            entry.waiting_page,
            encode_uri_component(&back)
        )),
        reason,
    }
}
