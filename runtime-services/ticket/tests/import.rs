//! Seat-map import: idempotent, and never touching held or sold seats.

mod support;

use serde_json::json;
use sqlx::PgPool;
use support::{settings, start, unique_event};
use urr_ticket::inventory;
use urr_ticket::settings::Catalog;

#[sqlx::test(migrations = false)]
async fn import_is_idempotent_and_spares_sold_seats(pool: PgPool) {
    let event = unique_event();
    let service = start(pool, settings(&event, 4, 4)).await;
    assert_eq!(service.count("SELECT count(*) FROM seats").await, 10_000);
    // The same map again changes nothing.
    let same = inventory::import(&service.desk.pool, &service.desk.catalog)
        .await
        .expect("import");
    assert!(!same.changed);
    // Sell a seat in the last row, hold one, then shrink the block to 50 rows.
    let sold = service
        .hold("alice", json!({"seats": ["a:100:1"]}), None)
        .await;
    let id = sold.body["holdId"].as_str().expect("id");
    assert_eq!(service.confirm(id, "pay-1", 120_000).await.status, 200);
    assert_eq!(
        service
            .hold("bob", json!({"seats": ["a:99:1"]}), None)
            .await
            .status,
        201
    );
    let mut smaller = settings(&event, 4, 4);
    smaller["seatMap"]["sections"][1]["rows"] = 50.into();
    let catalog = Catalog::from_json(&smaller.to_string(), &event).expect("catalog");
    let report = inventory::import(&service.desk.pool, &catalog)
        .await
        .expect("import");
    assert!(report.changed);
    assert_eq!(report.seats_retired, 5_000 - 2);
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE seat_id = 'a:100:1' AND status = 'sold'")
            .await,
        1
    );
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE seat_id = 'a:99:1' AND status = 'held'")
            .await,
        1
    );
    // Growing back restores the retired seats.
    let back = inventory::import(&service.desk.pool, &service.desk.catalog)
        .await
        .expect("import");
    assert_eq!(back.seats_restored, 5_000 - 2);
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE status = 'retired'")
            .await,
        0
    );
    // A standing section cannot shrink below what is taken.
    assert_eq!(
        service
            .hold("carol", json!({"section": "floor", "quantity": 4}), None)
            .await
            .status,
        201
    );
    let mut tiny = settings(&event, 4, 4);
    tiny["seatMap"]["sections"][0]["capacity"] = 3.into();
    let catalog = Catalog::from_json(&tiny.to_string(), &event).expect("catalog");
    let shrunk = inventory::import(&service.desk.pool, &catalog)
        .await
        .expect("a shrink below what is taken does not stop the service");
    assert_eq!(
        shrunk.capacity_floors,
        vec![("floor".to_owned(), 3, 4)],
        "it shrinks only down to what is taken"
    );
    assert_eq!(
        service
            .count("SELECT capacity::bigint FROM standing_inventory WHERE section_id = 'floor'")
            .await,
        4
    );
    assert_eq!(
        service
            .count("SELECT capacity::bigint FROM sections WHERE id = 'floor'")
            .await,
        4
    );
}
