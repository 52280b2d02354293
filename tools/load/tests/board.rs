//! The crowd's seat board against a ticket service whose listing requests
//! stall: a buyer with a usable copy must not wait for another buyer's
//! request. The first board held one lock across every fetch, so one slow
//! listing stalled every admitted buyer (the 20,000-buyer sale took twice as
//! long while the queue counted them active).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;
use urr_load::board::{Pick, SeatBoard};

/// A ticket service with one seated section of 100 seats; its listing
/// answers only while `open` is true.
#[derive(Clone)]
struct Fake {
    open: watch::Receiver<bool>,
    listings: Arc<AtomicUsize>,
}

async fn listing(State(fake): State<Fake>) -> Json<Value> {
    fake.listings.fetch_add(1, Ordering::SeqCst);
    let mut open = fake.open.clone();
    let _ = open.wait_for(|open| *open).await;
    let seats: Vec<Value> = (1..=100)
        .map(|n| json!({"seatId": format!("a:1:{n}"), "status": "available"}))
        .collect();
    Json(json!({ "seats": seats }))
}

async fn serve(fake: Fake) -> String {
    let app = axum::Router::new()
        .route(
            "/v1/events/e",
            get(|| async { Json(json!({"sections": [{"id": "a", "kind": "seated"}]})) }),
        )
        .route(
            "/v1/events/e/availability",
            get(|| async { Json(json!({"sections": [{"id": "a", "available": 100}]})) }),
        )
        .route("/v1/events/e/sections/a/seats", get(listing))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test]
async fn a_stale_copy_serves_buyers_while_one_refreshes_it() {
    let (open, receiver) = watch::channel(true);
    let listings = Arc::new(AtomicUsize::new(0));
    let base = serve(Fake {
        open: receiver,
        listings: listings.clone(),
    })
    .await;
    let board = Arc::new(
        SeatBoard::new(reqwest::Client::new(), &base, "e")
            .await
            .expect("board"),
    );
    assert!(matches!(board.pick().await.expect("pick"), Pick::Seats(_)));
    assert_eq!(listings.load(Ordering::SeqCst), 1);

    // The listing stalls from now on, and the copies age past their freshness.
    open.send_replace(false);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let refreshing = tokio::spawn({
        let board = board.clone();
        async move { board.pick().await }
    });
    while listings.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One buyer is inside the stalled request; the others pick from the copy.
    for _ in 0..10 {
        let pick = tokio::time::timeout(Duration::from_secs(10), board.pick())
            .await
            .expect("a buyer waited for another buyer's listing request")
            .expect("pick");
        let Pick::Seats(seats) = pick else {
            panic!("expected seats, got {pick:?}");
        };
        assert!(!seats.is_empty());
    }
    assert_eq!(
        listings.load(Ordering::SeqCst),
        2,
        "one refresh in flight, not one per buyer"
    );
    open.send_replace(true);
    let refreshed = refreshing.await.expect("join").expect("pick");
    assert!(matches!(refreshed, Pick::Seats(_)));
}

/// A ticket service that answers its availability with `503` (PostgreSQL
/// paused, its pool timing out) twice before it recovers: the board waits
/// it out, as every other step of a buyer's journey does. The board before
/// failed the buyer on the first 503 (36 buyers in one fault drill).
#[tokio::test]
async fn a_briefly_unavailable_ticket_service_is_waited_out_not_a_failed_buyer() {
    let refusals = Arc::new(AtomicUsize::new(2));
    let app = axum::Router::new()
        .route(
            "/v1/events/e",
            get(|| async { Json(json!({"sections": [{"id": "s", "kind": "standing"}]})) }),
        )
        .route(
            "/v1/events/e/availability",
            get(|State(left): State<Arc<AtomicUsize>>| async move {
                if left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let mut busy = axum::response::IntoResponse::into_response(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    );
                    busy.headers_mut()
                        .insert("retry-after", axum::http::HeaderValue::from_static("1"));
                    return busy;
                }
                axum::response::IntoResponse::into_response(Json(
                    json!({"sections": [{"id": "s", "available": 10}]}),
                ))
            }),
        )
        .with_state(refusals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let board = SeatBoard::new(reqwest::Client::new(), &format!("http://{address}"), "e")
        .await
        .expect("board");
    let pick = board.pick().await.expect("the 503s are waited out");
    assert!(matches!(pick, Pick::Standing { .. }), "{pick:?}");
    assert_eq!(
        refusals.load(Ordering::SeqCst),
        0,
        "both refusals were seen"
    );
}
