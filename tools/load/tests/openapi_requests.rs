//! urr-load's reads of the ticket API as its OpenAPI document says
//! (`docs/openapi/ticket.json`, issue 17): the crowd's seat board against a
//! fake ticket service that takes only the document's operations, with the
//! path parameters they declare, and answers only with bodies the
//! document's response schemas accept. The board must find its places in
//! those answers: a request the document does not have, or a field the
//! board needs that the document does not promise, fails here before it
//! fails a sale.
//!
//! The seat board is the part of the crowd that runs without the edge gate
//! and the queue; the buyers' join, hold and payment requests need both
//! (the services on the stack, in scripts/flash-sale).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use urr_load::board::{Pick, SeatBoard};

const EVENT: &str = "openapi-event";

fn document() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi/ticket.json"
    );
    let text = std::fs::read_to_string(path).expect("docs/openapi/ticket.json");
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
