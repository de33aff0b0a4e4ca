//! `cargo bench -p mallbots`: checkout → approved latency of the whole mall (every module in
//! one process) at a light, steady load, on SQLite + the embedded broker and on PostgreSQL +
//! JetStream (when `MALLBOTS_TEST_PG` and `MALLBOTS_TEST_NATS` answer).
//!
//! Each order: start a basket, add an item, check out; the clock runs from the checkout
//! request to the moment `ordersapi.OrderApproved` for that order is seen on the broker.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on any error"
)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use messaging::ConsumerSpec;
use reqwest::Method;
use serde_json::json;
use testkit::{Backend, spawn_app};

const RATE: u64 = 10; // orders per second
const ORDERS: usize = 100;

async fn measure(backend: Backend) {
    let app = Arc::new(spawn_app(&["all"], backend).await);
    let store = app
        .create("/api/stores", json!({"name": "Store", "location": "L1"}))
        .await;
    let product = app
        .create(
            &format!("/api/stores/{store}/products"),
            json!({"name": "P", "price": 1.0}),
        )
        .await;
    let customer = app
        .create("/api/customers", json!({"name": "Ada", "smsNumber": "555"}))
        .await;
    let payment = app
        .create(
            "/api/payments",
            json!({"customerId": customer, "amount": 1000.0}),
        )
        .await;

    // Watch approvals as they are published.
    let approved: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let spec = ConsumerSpec {
        durable: "bench-approvals".into(),
        subject: proto::ordering::ORDER_AGGREGATE_CHANNEL.into(),
        ack_wait: Duration::from_secs(30),
    };
    let mut consumer = app.broker.consumer(&spec).await.unwrap();
    let seen = approved.clone();
    let watcher = tokio::spawn(async move {
        loop {
            let delivery = consumer.next().await.unwrap();
            let envelope = messaging::Envelope::decode(delivery.body()).unwrap();
            if envelope.name == proto::ordering::ORDER_APPROVED_EVENT {
                let event = <proto::ordering::OrderApproved as prost::Message>::decode(
                    envelope.payload.as_slice(),
                )
                .unwrap();
                seen.lock().unwrap().insert(event.id, Instant::now());
            }
            let _ = delivery.ack().await;
        }
    });

    let mut started = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
    for _ in 0..ORDERS {
        tick.tick().await;
        let basket = app
            .create("/api/baskets", json!({"customerId": customer}))
            .await;
        app.json(
            Method::PUT,
            &format!("/api/baskets/{basket}/addItem"),
            json!({"productId": product, "quantity": 1}),
        )
        .await;
        started.insert(basket.clone(), Instant::now());
        let (status, _) = app
            .json(
                Method::PUT,
                &format!("/api/baskets/{basket}/checkout"),
                json!({"paymentId": payment}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while approved.lock().unwrap().len() < ORDERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    watcher.abort();
    let approved = approved.lock().unwrap();
    let mut latencies: Vec<Duration> = started
        .iter()
        .filter_map(|(id, at)| approved.get(id).map(|done| *done - *at))
        .collect();
    latencies.sort();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    let name = match backend {
        Backend::Sqlite => "sqlite + embedded",
        Backend::Postgres => "postgres + jetstream",
    };
    println!(
        "{name:<22} {:>8.1} {:>8.1} {:>8.1} {:>6}/{ORDERS}",
        at(0.5),
        at(0.99),
        at(1.0),
        latencies.len()
    );
}

#[tokio::main]
async fn main() {
    println!("checkout → approved at {RATE} orders/s, all modules in one process (ms)");
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>10}",
        "backend", "p50", "p99", "max", "approved"
    );
    measure(Backend::Sqlite).await;
    let reachable = messaging::testing::postgres_and_nats_answer().await;
    if reachable {
        measure(Backend::Postgres).await;
    } else {
        println!("postgres + jetstream   not measured: PostgreSQL or NATS does not answer");
    }
}
