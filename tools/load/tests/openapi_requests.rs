//! urr-load's requests of the queue, ticket and payment APIs as their
//! OpenAPI documents say (`docs/openapi/`, issue 17).
//!
//! The crowd's seat board runs against a fake ticket service that takes
//! only the document's operations, with the path parameters they declare,
//! and answers only with bodies the document's response schemas accept.
//! The board must find its places in those answers: a request the
//! document does not have, or a field the board needs that the document
//! does not promise, fails here before it fails a sale.
//!
//! A buyer's journey needs the edge gate and the queue, so its requests are
//! checked one by one instead, as `urr_load::buyer::requests` builds them
//! (the very functions the journey sends): each must be an operation of its
//! service's document, carry what the operation's security asks for and no
//! header it does not document, and send a body its request schema accepts;
//! and what the buyer reads of each answer must be found in an answer the
//! response schema accepts, under the status the buyer waits for.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use urr_load::board::{Pick, SeatBoard};

const EVENT: &str = "openapi-event";

fn document() -> Value {
    document_of("ticket")
}

/// `docs/openapi/<service>.json`.
fn document_of(service: &str) -> Value {
    let path = format!(
        "{}/../../docs/openapi/{service}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("the service's document");
    serde_json::from_str(&text).expect("the document is JSON")
}

/// The operation of `document` that `method path` is, with its path
/// parameters, if the document has one.
fn operation<'a>(
    document: &'a Value,
    method: &str,
    path: &str,
) -> Option<(&'a Value, Vec<String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (template, item) in document["paths"].as_object()? {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut parameters = Vec::new();
        let matched = parts.iter().zip(&segments).all(|(part, segment)| {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    parameters.push(name.to_owned());
                    !segment.is_empty()
                }
                None => part == segment,
            }
        });
        if let (true, Some(operation)) = (matched, item.get(method)) {
            return Some((operation, parameters));
        }
    }
    None
}

/// Where `body` differs from `schema` (a `$ref` into the document's
/// components, or an inline schema).
fn violations(document: &Value, schema: &Value, body: &Value) -> Vec<String> {
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&root).expect("the response schema compiles");
    validator.iter_errors(body).map(|e| e.to_string()).collect()
}

/// The fake's answer to `operation_id`: a seated section of 10 seats and a
/// standing one of 100, all free.
fn answer_of(operation_id: &str) -> Option<Value> {
    let price = json!({"amountMinor": 50000, "currency": "KRW"});
    Some(match operation_id {
        "eventInfo" => json!({
            "event": EVENT, "displayName": "OpenAPI", "salesOpenAt": null, "salesCloseAt": null,
            "holdTimeoutSeconds": 600, "limits": {"maxSeatsPerOrder": 4, "maxSeatsPerUser": 4},
            "sections": [
                {"id": "a", "name": "A", "kind": "seated", "capacity": 10, "price": price, "rows": 2, "seatsPerRow": 5},
                {"id": "floor", "name": "Floor", "kind": "standing", "capacity": 100, "price": price},
            ],
        }),
        "availability" => json!({
            "event": EVENT, "asOfMs": urr_service_common::unix_now_ms(),
            "sections": [
                {"id": "a", "capacity": 10, "available": 10, "held": 0, "sold": 0},
                {"id": "floor", "capacity": 100, "available": 100, "held": 0, "sold": 0},
            ],
        }),
        "sectionSeats" => {
            let seats: Vec<Value> = (1..=2)
                .flat_map(|row| (1..=5).map(move |number| (row, number)))
                .map(|(row, number)| {
                    json!({"seatId": format!("a:{row}:{number}"), "row": row, "number": number, "status": "available"})
                })
                .collect();
            json!({"section": "a", "seats": seats})
        }
        _ => return None,
    })
}

#[derive(Clone)]
struct Fake {
    document: Arc<Value>,
    /// What the board asked for, by operation id.
    asked: Arc<Mutex<Vec<String>>>,
    /// Requests or answers the document does not have.
    findings: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn find(&self, finding: String) {
        self.findings.lock().expect("findings").push(finding);
    }
}

async fn ticket_service(State(fake): State<Fake>, request: Request) -> Response {
    let method = request.method().as_str().to_ascii_lowercase();
    let path = request.uri().path().to_owned();
    let Some((operation, parameters)) = operation(&fake.document, &method, &path) else {
        fake.find(format!(
            "{method} {path}: no such operation in the document"
        ));
        return StatusCode::NOT_FOUND.into_response();
    };
    let id = operation["operationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for name in parameters {
        let declared = operation["parameters"].as_array().is_some_and(|declared| {
            declared
                .iter()
                .any(|p| p["in"] == "path" && p["name"] == name.as_str())
        });
        if !declared {
            fake.find(format!("{id}: path parameter {name} is not declared"));
        }
    }
    fake.asked.lock().expect("asked").push(id.clone());
    let Some(body) = answer_of(&id) else {
        fake.find(format!("{id}: the seat board has no business calling it"));
        return StatusCode::NOT_FOUND.into_response();
    };
    let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    for violation in violations(&fake.document, schema, &body) {
        fake.find(format!(
            "{id}: the fake's answer is not what the document says: {violation}"
        ));
    }
    Json(body).into_response()
}

#[tokio::test]
async fn the_seat_board_asks_and_reads_what_the_ticket_api_documents() {
    let fake = Fake {
        document: Arc::new(document()),
        asked: Arc::default(),
        findings: Arc::default(),
    };
    let app = axum::Router::new()
        .fallback(ticket_service)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let board = SeatBoard::new(reqwest::Client::new(), &base, EVENT)
        .await
        .expect("the board reads the event");
    // Picks are weighted by places left: enough of them to pick both kinds.
    let (mut seated, mut standing) = (false, false);
    for _ in 0..200 {
        match board.pick().await.expect("a pick") {
            Pick::Seats(seats) => {
                assert!(seats.iter().all(|s| s.starts_with("a:")), "{seats:?}");
                seated = true;
            }
            Pick::Standing { section, quantity } => {
                assert_eq!(section, "floor");
                assert!((1..=2).contains(&quantity));
                standing = true;
            }
            Pick::SoldOut { .. } => panic!("the fake has places left"),
        }
        if seated && standing {
            break;
        }
    }
    assert!(seated && standing, "seated {seated}, standing {standing}");
    let findings = fake.findings.lock().expect("findings").clone();
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    let asked = fake.asked.lock().expect("asked").clone();
    for id in ["eventInfo", "availability", "sectionSeats"] {
        assert!(asked.iter().any(|a| a == id), "never asked {id}: {asked:?}");
    }
}

/// `schema` with its `$ref` (into `document`'s components) followed.
fn resolved<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolved(document, document.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => schema,
    }
}

/// Every property any branch of `schema` declares (through `allOf`,
/// `oneOf`, `anyOf`): a member outside them is one the document does not
/// promise, even where `additionalProperties` lets it through.
fn declared_properties(document: &Value, schema: &Value, into: &mut Vec<String>) {
    let schema = resolved(document, schema);
    if let Some(properties) = schema["properties"].as_object() {
        into.extend(properties.keys().cloned());
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        for branch in schema[combinator].as_array().into_iter().flatten() {
            declared_properties(document, branch, into);
        }
    }
}

/// What is wrong with `request` (as reqwest would send it) against
/// `document`: the operation's id, and the findings.
fn request_findings(document: &Value, request: &reqwest::Request) -> (String, Vec<String>) {
    let method = request.method().as_str().to_ascii_lowercase();
    let path = request.url().path().to_owned();
    let what = format!("{method} {path}");
    let Some((operation, parameters)) = operation(document, &method, &path) else {
        return (what.clone(), vec![format!("{what}: no such operation")]);
    };
    let id = operation["operationId"]
        .as_str()
        .unwrap_or(&what)
        .to_owned();
    let mut findings = Vec::new();
    let declared = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let parameter = |name: &str, place: &str| {
        declared.iter().find(|p| {
            p["in"] == place
                && p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    };
    for name in parameters {
        if parameter(&name, "path").is_none() {
            findings.push(format!("{id}: path parameter {name} is not declared"));
        }
    }
    let headers = request.headers();
    let cookie_has = |name: &str| {
        headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|pair| {
                pair.trim()
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.len() > 1 && rest.starts_with('='))
            })
    };
    // The security schemes the operation names, and whether the request
    // carries each; some alternative must be carried whole.
    let schemes = &document["components"]["securitySchemes"];
    let mut documented_headers: Vec<String> = Vec::new();
    let carries = |scheme: &str, documented: &mut Vec<String>| -> bool {
        let scheme = &schemes[scheme];
        match (scheme["type"].as_str(), scheme["in"].as_str()) {
            (Some("http"), _) if scheme["scheme"] == "bearer" => {
                documented.push("authorization".to_owned());
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .is_some_and(|token| !token.is_empty())
            }
            (Some("apiKey"), Some("header")) => {
                let name = scheme["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let carried = headers.get(name.as_str()).is_some_and(|v| !v.is_empty());
                documented.push(name);
                carried
            }
            (Some("apiKey"), Some("cookie")) => {
                documented.push("cookie".to_owned());
                cookie_has(scheme["name"].as_str().unwrap_or_default())
            }
            _ => false,
        }
    };
    let requirements = operation
        .get("security")
        .or_else(|| document.get("security"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut met = requirements.is_empty();
    for requirement in &requirements {
        let mut all = true;
        for scheme in requirement.as_object().into_iter().flat_map(|o| o.keys()) {
            all &= carries(scheme, &mut documented_headers);
        }
        met |= all;
    }
    if !met {
        findings.push(format!(
            "{id}: carries none of its security requirements {requirements:?}"
        ));
    }
    for p in declared
        .iter()
        .filter(|p| p["in"] == "header" && p["required"] == true)
    {
        let name = p["name"].as_str().unwrap_or_default();
        if !headers.contains_key(name) {
            findings.push(format!("{id}: required header {name} missing"));
        }
    }
    for name in headers.keys() {
        let name = name.as_str();
        let documented = documented_headers.iter().any(|d| d == name)
            || parameter(name, "header").is_some()
            || (name == "content-type" && request.body().is_some());
        if !documented {
            findings.push(format!(
                "{id}: sends header {name}, which the operation does not document"
            ));
        }
    }
    let body = &operation["requestBody"];
    match request.body().and_then(|b| b.as_bytes()) {
        Some(bytes) => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let schema = &body["content"][content_type]["schema"];
            if schema.is_null() {
                findings.push(format!(
                    "{id}: a {content_type:?} body, which the operation does not take"
                ));
            } else {
                match serde_json::from_slice::<Value>(bytes) {
                    Ok(json) => findings.extend(
                        violations(document, schema, &json)
                            .into_iter()
                            .map(|v| format!("{id}: body {json}: {v}")),
                    ),
                    Err(error) => findings.push(format!("{id}: the body is not JSON: {error}")),
                }
            }
        }
        None if body["required"] == true => {
            findings.push(format!("{id}: no body, which it requires"))
        }
        None => {}
    }
    (id, findings)
}

/// Checks `answer`, the fake answer of `id` under `status`, is one the
/// document promises: the status is documented, the body validates against
/// its schema and uses only declared members. Returns the findings.
fn answer_findings(document: &Value, id: &str, status: &str, answer: &Value) -> Vec<String> {
    let Some(operation) = document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .flat_map(|item| item.as_object().into_iter().flat_map(|o| o.values()))
        .find(|o| o["operationId"] == id)
    else {
        return vec![format!("{id}: no such operation")];
    };
    let response = &operation["responses"][status];
    if response.is_null() {
        return vec![format!("{id}: answers no {status}")];
    }
    let Some((_, content)) = response["content"]
        .as_object()
        .and_then(|c| c.iter().next())
    else {
        return vec![format!("{id}: {status} has no body")];
    };
    let schema = &content["schema"];
    let mut findings: Vec<String> = violations(document, schema, answer)
        .into_iter()
        .map(|v| format!("{id} {status}: the fake's answer is not what the document says: {v}"))
        .collect();
    let mut declared = Vec::new();
    declared_properties(document, schema, &mut declared);
    for member in answer.as_object().into_iter().flat_map(|o| o.keys()) {
        if !declared.contains(member) {
            findings.push(format!(
                "{id} {status}: member {member} is not in the document"
            ));
        }
    }
    findings
}

// Each of these was seen to fail the test: the payment body's `holdId`
// renamed `hold` (not in CreateBody, and its required member missing), the
// entry token sent as `entry-token` (the hold's security unmet, an
// undocumented header), the confirm sent to `/confirmation` (no such
// operation), and `placesLeft` read as `places_left` (the sold-out place
// not read as final).
#[test]
fn the_buyers_requests_are_operations_of_the_documents() {
    use urr_load::buyer::requests::{self, ApiRequest};
    let (queue, ticket, payment) = (
        document_of("queue"),
        document_of("ticket"),
        document_of("payment"),
    );
    let user = "user.jwt.token";
    let (seated, _) =
        requests::hold_body(&Pick::Seats(vec!["a:1:1".into(), "a:1:2".into()])).expect("seats");
    let (standing, places) = requests::hold_body(&Pick::Standing {
        section: "floor".into(),
        quantity: 2,
    })
    .expect("standing");
    assert_eq!(places, 2);
    assert!(requests::hold_body(&Pick::SoldOut { as_of_ms: 0 }).is_none());
    // Every request a journey sends, and the operation it must be.
    let sent: Vec<(&Value, ApiRequest, &str)> = vec![
        (&queue, requests::take_number("room-a"), "takeNumber"),
        (
            &queue,
            requests::join("event-a", user, "pass-value"),
            "joinQueue",
        ),
        (
            &queue,
            requests::queue_status("event-a", user),
            "queueStatus",
        ),
        (&queue, requests::leave_queue("event-a", user), "leaveQueue"),
        (
            &ticket,
            requests::create_hold("event-a", user, "entry.jwt.token", "key-1", seated),
            "createHold",
        ),
        (
            &ticket,
            requests::create_hold("event-a", user, "entry.jwt.token", "key-2", standing),
            "createHold",
        ),
        (
            &ticket,
            requests::release_hold("event-a", "hold-1", user),
            "releaseHold",
        ),
        (
            &payment,
            requests::create_payment(user, "key-3", "hold-1"),
            "createPayment",
        ),
        (
            &payment,
            requests::confirm_payment("pay-1", user, "pm_sandbox_ok"),
            "confirmPayment",
        ),
        (
            &payment,
            requests::read_payment("pay-1", user),
            "getPayment",
        ),
    ];
    let http = reqwest::Client::new();
    let mut findings = Vec::new();
    for (document, request, expected) in &sent {
        // As reqwest sends it: what `build` makes of the description.
        let built = request
            .build(&http, "http://127.0.0.1:1")
            .build()
            .expect("the request builds");
        let (id, found) = request_findings(document, &built);
        findings.extend(found);
        if id != *expected {
            findings.push(format!("{request:?} is {id}, not {expected}"));
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

#[test]
fn the_buyer_reads_what_the_documents_promise() {
    use urr_load::buyer::requests::{self, PaymentRead, Place};
    let (queue, ticket, payment) = (
        document_of("queue"),
        document_of("ticket"),
        document_of("payment"),
    );
    let mut findings = Vec::new();

    // Tier 1: the pass comes in the number's Set-Cookie.
    let number = &queue["paths"]["/v1/rooms/{room}/numbers"]["post"]["responses"]["201"];
    if number["headers"]["Set-Cookie"].is_null() {
        findings.push("takeNumber 201: no Set-Cookie documented".to_owned());
    }
    assert_eq!(
        requests::pass_of("urr-vwr-token=abc; Path=/; HttpOnly").as_deref(),
        Some("abc")
    );

    // A place in line at the end of the sale, then an admission.
    let waiting = json!({
        "event": "event-a", "status": "waiting", "position": 3, "total": 10, "preQueue": false,
        "etaSeconds": {"low": 1, "high": 2, "basis": "measured"}, "pollAfterMs": 1500,
        "admission": "soldOut", "placesLeft": 0, "placesHeld": 0, "order": "fifo",
    });
    let admitted = json!({
        "event": "event-a", "status": "admitted", "entryToken": "entry.jwt.token",
        "entryTokenExpiresAt": 1_765_000_000,
    });
    for (id, status, answer) in [
        ("joinQueue", "200", &waiting),
        ("queueStatus", "200", &waiting),
        ("queueStatus", "200", &admitted),
    ] {
        findings.extend(answer_findings(&queue, id, status, answer));
    }
    let place = Place::read(&waiting);
    assert!(!place.admitted());
    assert!(place.finally_sold_out(), "{place:?}");
    assert_eq!(place.poll_after_ms, Some(1500));
    let place = Place::read(&admitted);
    assert!(place.admitted(), "{place:?}");
    assert_eq!(place.entry_token.as_deref(), Some("entry.jwt.token"));
    assert_eq!(place.entry_token_expires_at, Some(1_765_000_000));
    // Dropped for missing heartbeats: the poll's 404 makes the buyer join again.
    findings.extend(answer_findings(
        &queue,
        "queueStatus",
        "404",
        &json!({"type": "https://urr.dev/problems/not-in-queue", "title": "Not in the queue", "status": 404, "detail": "join first"}),
    ));
    // The 403s the buyer waits out are problem types of the document.
    for kind in requests::JOIN_WAITS {
        let problem = json!({"type": format!("https://urr.dev/problems/{kind}"), "title": "Too early", "status": 403, "detail": "later"});
        findings.extend(answer_findings(&queue, "joinQueue", "403", &problem));
        assert_eq!(requests::problem_kind(&problem), kind);
    }

    // The hold, and the statuses the buyer branches on.
    let hold = json!({
        "holdId": "hold-1", "event": "event-a", "userId": "buyer-000001", "status": "active",
        "seats": ["a:1:1"], "section": null, "quantity": 1, "amountMinor": 50000, "currency": "KRW",
        "expiresAtMs": 1_765_000_000_000_i64,
    });
    findings.extend(answer_findings(&ticket, "createHold", "201", &hold));
    assert_eq!(requests::hold_id(&hold), Some("hold-1"));
    for status in ["409", "422", "503"] {
        if ticket["paths"]["/v1/events/{event}/holds"]["post"]["responses"][status].is_null() {
            findings.push(format!(
                "createHold: answers no {status}, which the buyer branches on"
            ));
        }
    }

    // The payment as created, confirmed and read to its end.
    let view = |status: &str| {
        json!({
            "paymentId": "pay-1", "event": "event-a", "holdId": "hold-1", "userId": "buyer-000001",
            "status": status, "amountMinor": 50000, "currency": "KRW", "provider": "sandbox",
            "refundedMinor": 0, "transitions": [], "pollAfterMs": 700,
        })
    };
    findings.extend(answer_findings(
        &payment,
        "createPayment",
        "201",
        &view("created"),
    ));
    findings.extend(answer_findings(
        &payment,
        "confirmPayment",
        "202",
        &view("authorized"),
    ));
    // The statuses the journey tells apart (buyer/pay.rs).
    for status in ["created", "authorized", "captured", "failed"] {
        findings.extend(answer_findings(
            &payment,
            "getPayment",
            "200",
            &view(status),
        ));
        let read = PaymentRead::read(&view(status));
        assert_eq!(read.status.as_deref(), Some(status));
        assert_eq!(read.id.as_deref(), Some("pay-1"));
        assert_eq!(read.poll_after_ms, Some(700));
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}
