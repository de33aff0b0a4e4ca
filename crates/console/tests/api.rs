//! The console's data over HTTP, on each backend: an order's timeline lists its messages with
//! who handled each; the board counts it; the live stream opens with the counts and carries the
//! watched order's steps; operations answer 404 for what does not exist.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use testkit::{Backend, spawn_app};

db::backend_tests!(
    an_order_has_a_timeline_and_a_place_on_the_board,
    the_live_stream_opens_with_the_counts_and_follows_an_order,
    operations_on_what_does_not_exist_are_not_found,
);

async fn an_order_has_a_timeline_and_a_place_on_the_board(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    let shop = app.mall(1000.0).await;
    let order = app.checkout(&shop, 2).await;
    app.order_is(&order, "approved").await;
    let path = format!("/api/console/orders/{order}");
    let timeline = testkit::until(|| async {
        let (status, timeline) = app.json(Method::GET, &path, Value::Null).await;
        let names: Vec<String> = timeline["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|step| step["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        if status == 200 && names.iter().any(|n| n == "ordersapi.OrderApproved") {
            Ok(timeline)
        } else {
            Err(format!("{status}: {names:?}"))
        }
    })
    .await;
    assert_eq!(timeline["order"]["status"], "approved");
    assert_eq!(timeline["order"]["items"], 2);
    let steps = timeline["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "basketsapi.BasketCheckedOut");
    let sent: Vec<i64> = steps
        .iter()
        .map(|s| s["sentAt"].as_i64().unwrap())
        .collect();
    assert!(
        sent.windows(2).all(|w| w[0] <= w[1]),
        "in the order sent: {sent:?}"
    );
    let created = steps
        .iter()
        .find(|s| s["name"] == "ordersapi.OrderCreated")
        .unwrap();
    let handlers: Vec<&str> = created["handledBy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|by| by["consumer"].as_str().unwrap())
        .collect();
    assert!(handlers.contains(&"cosec-ordering"), "{handlers:?}");
    assert!(!handlers.contains(&"console-stream"), "{handlers:?}");
    let commands = steps.iter().filter(|s| s["kind"] == "command").count();
    assert_eq!(commands, 5, "{steps:#?}");

    // A consumer that gave up on one of its messages: the step says so.
    let created_id = created["id"].as_str().unwrap().to_owned();
    sqlx::query(
        "INSERT INTO search.dead_letters (consumer, id, name, subject, body, error, attempts, dead_at, replay_requested)
         VALUES ('search-orders', $1, 'ordersapi.OrderCreated', 'mallbots.ordering.events.Order', $2, 'search is down', 5, 1, FALSE)",
    )
    .bind(&created_id)
    .bind(vec![0_u8])
    .execute(app.db.pool())
    .await
    .unwrap();
    let (_, timeline) = app.json(Method::GET, &path, Value::Null).await;
    let marked: Vec<&Value> = timeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["deadLetters"].as_array().is_some_and(|d| !d.is_empty()))
        .collect();
    assert_eq!(marked.len(), 1, "{timeline:#}");
    assert_eq!(marked[0]["id"], created_id.as_str());
    assert_eq!(marked[0]["deadLetters"][0]["error"], "search is down");

    let (status, board) = app
        .json(Method::GET, "/api/console/board", Value::Null)
        .await;
    assert_eq!(status, 200);
    assert!(board["summary"]["counts"]["approved"].as_i64().unwrap() >= 1);
    let orders = board["orders"].as_array().unwrap();
    assert!(orders.iter().any(|o| o["id"] == order.as_str()));
    let unknown = "/api/console/orders/nothing-like-it";
    assert_eq!(app.json(Method::GET, unknown, Value::Null).await.0, 404);
}

/// Reads the stream until `wanted` is in what arrived (10 s at most).
async fn read_until(response: &mut reqwest::Response, wanted: &str) -> String {
    let mut seen = String::new();
    let read = async {
        while !seen.contains(wanted) {
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .is_err()
    {
        panic!("{wanted} not streamed");
    }
    seen
}

async fn the_live_stream_opens_with_the_counts_and_follows_an_order(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    let shop = app.mall(1000.0).await;
    let order = app.checkout(&shop, 1).await;
    let mut live = app.get(&format!("/api/console/live?order={order}")).await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let first = read_until(&mut live, "\n\n").await;
    assert!(first.starts_with("event: summary\n"), "{first}");
    app.order_is(&order, "approved").await;
    app.pick(&order).await;
    let seen = read_until(&mut live, "ordersapi.OrderReadied").await;
    assert!(seen.contains("event: step"), "{seen}");
    let seen = read_until(&mut live, "\"status\":\"ready\"").await;
    assert!(seen.contains("event: order"), "{seen}");

    let bad = app.get("/api/console/live?queues=maybe").await;
    assert_eq!(bad.status(), 400);
}

async fn operations_on_what_does_not_exist_are_not_found(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    let (status, operations) = app
        .json(Method::GET, "/api/console/operations", Value::Null)
        .await;
    assert_eq!(status, 200);
    let outboxes = operations["outboxes"].as_array().unwrap();
    assert!(
        outboxes
            .iter()
            .any(|o| o["module"] == "ordering" && o["pending"].is_i64()),
        "{outboxes:?}"
    );
    let consumers = operations["consumers"].as_array().unwrap();
    assert!(consumers.iter().any(|c| c["consumer"] == "console-stream"));
    let letter = "no dead letter m-1 of consumer payments-orders";
    for (method, path, message) in [
        (
            Method::POST,
            "/api/console/dead-letters/nowhere/c/m-1/replay",
            "no module \"nowhere\" in this process",
        ),
        (
            Method::POST,
            "/api/console/dead-letters/payments/payments-orders/m-1/replay",
            letter,
        ),
        (
            Method::DELETE,
            "/api/console/dead-letters/payments/payments-orders/m-1",
            letter,
        ),
    ] {
        let (status, body) = app.json(method, path, Value::Null).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (404, Some(message)),
            "{path}"
        );
    }
    let (status, stuck) = app
        .json(Method::GET, "/api/cosec/stuck-sagas", Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(stuck["sagas"], serde_json::json!([]));
    let too_short = "/api/cosec/stuck-sagas?waitingSeconds=0";
    assert_eq!(app.json(Method::GET, too_short, Value::Null).await.0, 400);
}
