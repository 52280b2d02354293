//! A contract fake of TossPayments' core API, built from its reference
//! (<https://docs.tosspayments.com/reference>): what URR calls, answered
//! the way Toss documents it.
//!
//! * `POST /v1/payments/confirm` `{paymentKey, orderId, amount}`: the widget
//!   session must exist (else 404 `NOT_FOUND_PAYMENT`), belong to the order
//!   (403 `FORBIDDEN_REQUEST`), be for that amount (400 `INVALID_REQUEST`),
//!   and not be confirmed already (400 `ALREADY_PROCESSED_PAYMENT`); an
//!   expired session is 404 `NOT_FOUND_PAYMENT_SESSION`; a declining card
//!   403 with its code, the payment `ABORTED` with `failure`.
//! * `GET /v1/payments/{paymentKey}`, `GET /v1/payments/orders/{orderId}`.
//! * `POST /v1/payments/{paymentKey}/cancel` `{cancelReason, cancelAmount?}`
//!   with `Idempotency-Key`: a key seen before is answered its first answer
//!   and nothing is done again.
//! * Every request must carry `Authorization: Basic base64("{secretKey}:")`
//!   (else 401 `UNAUTHORIZED_KEY`); every error is `{"code", "message"}`.
//!
//! Scripts make it fail the ways Toss does: an error code instead of the
//! work, an error or a hang or garbage *after* the work was done (the
//! answer lost, the money moved), queries that fail, a status URR does not know.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

pub const SECRET_KEY: &str = "test_sk_urr_contract_fake_0123";

/// One widget session / payment at the fake.
#[derive(Debug, Clone)]
pub struct FakePayment {
    pub key: String,
    pub order: String,
    pub amount: i64,
    pub balance: i64,
    pub status: String,
    pub approved: bool,
    /// A card that is declined at confirm, with this code.
    pub declines_with: Option<&'static str>,
    pub failure: Option<Value>,
    pub cancels: Vec<Value>,
}

/// How the next confirm (or cancel) is answered.
#[derive(Debug, Clone)]
pub enum Script {
    /// This error instead of the work.
    Refuse(u16, &'static str),
    /// The work is done, then this error is answered.
    FailAfter(u16, &'static str),
    /// The work is done, then the answer takes this long.
    HangAfter(Duration),
    /// The work is done, then the answer is not JSON.
    GarbageAfter,
    /// The work is done, and the answer says this status.
    StatusAfter(&'static str),
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub path: String,
    pub authorized: bool,
    pub idempotency_key: Option<String>,
    pub body: Value,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub payments: HashMap<String, FakePayment>,
    pub confirm_script: Option<Script>,
    pub cancel_script: Option<Script>,
    /// Queries answer 500 `FAILED_INTERNAL_SYSTEM_PROCESSING` while set.
    pub queries_down: bool,
    /// Queries answer this status while set.
    pub query_status: Option<&'static str>,
    /// `(path, key)` → the first answer to a request with that key.
    idempotent: HashMap<(String, String), (u16, Value)>,
    pub seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct TossFake {
    pub base: String,
    state: Arc<Mutex<FakeState>>,
}

fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"code": code, "message": message}))
}

fn reply((status, body): (u16, Value)) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

impl FakePayment {
    /// The Payment object, with the documented fields URR and others read.
    pub fn object(&self) -> Value {
        json!({
            "mId": "tosspayments", "version": "2022-11-16",
            "lastTransactionKey": format!("txn_{}", self.key),
            "paymentKey": self.key, "orderId": self.order, "orderName": "URR seats",
            "currency": "KRW", "method": "카드", "type": "NORMAL", "country": "KR",
            "status": self.status,
            "requestedAt": "2026-12-03T10:16:31+09:00",
            "approvedAt": if self.approved { json!("2026-12-03T10:16:58+09:00") } else { Value::Null },
            "useEscrow": false, "cultureExpense": false, "isPartialCancelable": true,
            "totalAmount": self.amount, "balanceAmount": self.balance,
            "suppliedAmount": self.amount * 10 / 11, "vat": self.amount - self.amount * 10 / 11,
            "taxFreeAmount": 0, "taxExemptionAmount": 0,
            "failure": self.failure.clone().unwrap_or(Value::Null),
            "cancels": if self.cancels.is_empty() { Value::Null } else { json!(self.cancels) },
            "card": {"issuerCode": "61", "number": "43301234****123*", "approveNo": "00000000"},
        })
    }
}

impl TossFake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route("/v1/payments/confirm", post(confirm))
            .route("/v1/payments/orders/{order}", get(by_order))
            .route("/v1/payments/{key}", get(by_key))
            .route("/v1/payments/{key}/cancel", post(cancel))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Toss fake");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, state }
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }

    /// What the widget does when the buyer authenticates: a payment
    /// `IN_PROGRESS` for `order`, and the `paymentKey` the browser gets.
    pub fn authorise(&self, order: &str, amount: i64) -> String {
        let key = format!("tgen_{}", uuid::Uuid::new_v4().simple());
        self.state().payments.insert(
            key.clone(),
            FakePayment {
                key: key.clone(),
                order: order.to_owned(),
                amount,
                balance: amount,
                status: "IN_PROGRESS".to_owned(),
                approved: false,
                declines_with: None,
                failure: None,
                cancels: Vec::new(),
            },
        );
        key
    }

    /// Like [`Self::authorise`], with a card the issuer declines at confirm.
    pub fn authorise_declining(&self, order: &str, amount: i64, code: &'static str) -> String {
        let key = self.authorise(order, amount);
        if let Some(payment) = self.state().payments.get_mut(&key) {
            payment.declines_with = Some(code);
        }
        key
    }

    pub fn payment(&self, key: &str) -> FakePayment {
        self.state()
            .payments
            .get(key)
            .cloned()
            .expect("a fake payment")
    }

    pub fn seen(&self, method: &str, path_ends_with: &str) -> Vec<Seen> {
        self.state()
            .seen
            .iter()
            .filter(|s| s.method == method && s.path.ends_with(path_ends_with))
            .cloned()
            .collect()
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SECRET_KEY}:"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

/// Records the request; `Err` with the answer when it is not authorized.
fn admit(
    state: &mut FakeState,
    method: &'static str,
    path: String,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<String>, (u16, Value)> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ok = authorized(headers);
    state.seen.push(Seen {
        method,
        path,
        authorized: ok,
        idempotency_key: key.clone(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    });
    if !ok {
        return Err(error(
            401,
            "UNAUTHORIZED_KEY",
            "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
        ));
    }
    Ok(key)
}

/// Answers `done` (the work already happened) as `script` says.
async fn scripted(script: Option<Script>, done: (u16, Value)) -> Response {
    match script {
        None | Some(Script::Refuse(..)) => reply(done),
        Some(Script::FailAfter(status, code)) => {
            reply(error(status, code, "일시적인 오류가 발생했습니다."))
        }
        Some(Script::HangAfter(delay)) => {
            tokio::time::sleep(delay).await;
            reply(done)
        }
        Some(Script::GarbageAfter) => {
            (StatusCode::OK, "<html>502 Bad Gateway</html>").into_response()
        }
        Some(Script::StatusAfter(status)) => {
            let mut body = done.1;
            body["status"] = json!(status);
            reply((done.0, body))
        }
    }
}

async fn confirm(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (script, done) = {
        let mut state = state.lock().expect("fake state");
        if let Err(refused) = admit(
            &mut state,
            "POST",
            "/v1/payments/confirm".into(),
            &headers,
            &body,
        ) {
            return reply(refused);
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (Some(key), Some(order), Some(amount)) = (
            request["paymentKey"].as_str(),
            request["orderId"].as_str(),
            request["amount"].as_i64(),
        ) else {
            return reply(error(400, "INVALID_REQUEST", "잘못된 요청입니다."));
        };
        let script = state.confirm_script.take();
        if let Some(Script::Refuse(status, code)) = script {
            return reply(error(status, code, "scripted"));
        }
        let Some(payment) = state.payments.get_mut(key) else {
            return reply(error(
                404,
                "NOT_FOUND_PAYMENT",
                "존재하지 않는 결제 정보 입니다.",
            ));
        };
        if payment.order != order {
            return reply(error(403, "FORBIDDEN_REQUEST", "허용되지 않은 요청입니다."));
        }
        if payment.amount != amount {
            return reply(error(
                400,
                "INVALID_REQUEST",
                "결제 금액이 일치하지 않습니다.",
            ));
        }
        match payment.status.as_str() {
            "IN_PROGRESS" => {}
            "EXPIRED" => {
                return reply(error(
                    404,
                    "NOT_FOUND_PAYMENT_SESSION",
                    "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.",
                ));
            }
            _ => {
                return reply(error(
                    400,
                    "ALREADY_PROCESSED_PAYMENT",
                    "이미 처리된 결제 입니다.",
                ));
            }
        }
        if let Some(code) = payment.declines_with {
            payment.status = "ABORTED".into();
            payment.failure = Some(
                json!({"code": code, "message": "한도초과 혹은 잔액부족으로 결제에 실패했습니다."}),
            );
            return reply(error(
                403,
                code,
                "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
            ));
        }
        payment.status = "DONE".into();
        payment.approved = true;
        (script, (200, payment.object()))
    };
    scripted(script, done).await
}

fn query(
    state: &Arc<Mutex<FakeState>>,
    headers: &HeaderMap,
    path: String,
    found: impl Fn(&FakePayment) -> bool,
) -> Response {
    let mut state = state.lock().expect("fake state");
    if let Err(refused) = admit(&mut state, "GET", path, headers, &Bytes::new()) {
        return reply(refused);
    }
    if state.queries_down {
        return reply(error(
            500,
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "내부 시스템 처리 작업이 실패했습니다.",
        ));
    }
    let status = state.query_status;
    match state.payments.values().find(|p| found(p)) {
        Some(payment) => {
            let mut object = payment.object();
            if let Some(status) = status {
                object["status"] = json!(status);
            }
            reply((200, object))
        }
        None => reply(error(
            404,
            "NOT_FOUND_PAYMENT",
            "존재하지 않는 결제 정보 입니다.",
        )),
    }
}

async fn by_key(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    query(&state, &headers, format!("/v1/payments/{key}"), |p| {
        p.key == key
    })
}

async fn by_order(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(order): Path<String>,
    headers: HeaderMap,
) -> Response {
    query(
        &state,
        &headers,
        format!("/v1/payments/orders/{order}"),
        |p| p.order == order,
    )
}

async fn cancel(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/payments/{key}/cancel");
    let (script, done) = {
        let mut state = state.lock().expect("fake state");
        let idempotency = match admit(&mut state, "POST", path.clone(), &headers, &body) {
            Ok(key) => key,
            Err(refused) => return reply(refused),
        };
        if let Some(first) = idempotency
            .as_ref()
            .and_then(|k| state.idempotent.get(&(path.clone(), k.clone())))
        {
            return reply(first.clone());
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let reason = request["cancelReason"].as_str().unwrap_or_default();
        if reason.is_empty() || reason.chars().count() > 200 {
            return reply(error(400, "INVALID_REQUEST", "잘못된 요청입니다."));
        }
        let script = state.cancel_script.take();
        if let Some(Script::Refuse(status, code)) = script {
            return reply(error(status, code, "scripted"));
        }
        let Some(payment) = state.payments.get_mut(&key) else {
            return reply(error(
                404,
                "NOT_FOUND_PAYMENT",
                "존재하지 않는 결제 정보 입니다.",
            ));
        };
        let answer = match payment.status.as_str() {
            "CANCELED" => error(400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다."),
            "DONE" | "PARTIAL_CANCELED" => {
                let amount = match &request["cancelAmount"] {
                    Value::Null => Some(payment.balance),
                    value => value.as_i64(),
                };
                match amount {
                    Some(amount) if amount > 0 && amount <= payment.balance => {
                        payment.balance -= amount;
                        payment.status = (if payment.balance == 0 {
                            "CANCELED"
                        } else {
                            "PARTIAL_CANCELED"
                        })
                        .to_owned();
                        payment.cancels.push(json!({
                            "cancelAmount": amount, "cancelReason": reason, "taxFreeAmount": 0,
                            "refundableAmount": payment.balance, "cancelStatus": "DONE",
                            "canceledAt": "2026-12-03T10:20:00+09:00",
                            "transactionKey": format!("txc_{}", payment.cancels.len())
                        }));
                        (200, payment.object())
                    }
                    _ => error(403, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다."),
                }
            }
            _ => error(
                403,
                "NOT_CANCELABLE_PAYMENT",
                "취소 할 수 없는 결제 입니다.",
            ),
        };
        if let Some(k) = idempotency {
            state.idempotent.insert((path, k), answer.clone());
        }
        (script, answer)
    };
    scripted(script, done).await
}
