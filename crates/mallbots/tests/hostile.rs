//! Clients that try to grow the process or hold it hostage (issue 15): invented methods share
//! one metric label, a client slow to send its headers is cut off, connections beyond the
//! limit wait to be accepted, and a panicking handler answers 500 without taking the server
//! down.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, spawn_app, spawn_app_with};

db::backend_tests!(input_that_would_break_an_order_is_refused);
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

async fn raw(address: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let app = spawn_app_with(&["stores"], Backend::Sqlite, |_| {}).await;
    for n in 0..300 {
        let request =
            format!("INVENTED{n} /api/stores HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        raw(app.http, &request).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("INVENTED"),
        "an invented method is a label"
    );
    assert!(
        metrics.contains("method=\"other\""),
        "they are counted, as other"
    );
}

#[tokio::test]
async fn a_client_slow_to_send_its_headers_is_cut_off() {
    let app = spawn_app_with(&["stores"], Backend::Sqlite, |c| {
        c.http_header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.http).await.unwrap();
    stream
        .write_all(b"GET /liveness HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    // The server closes the connection (perhaps after a 408); the read ends.
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was held for 10 s");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "cut off before its time"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_their_turn() {
    let app = spawn_app_with(&["stores"], Backend::Sqlite, |c| {
        c.http_max_connections = 2;
    })
    .await;
    // Two idle keep-alive connections hold both places.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.http).await.unwrap();
        stream
            .write_all(b"GET /liveness HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0_u8; 256];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let waiting = tokio::spawn(raw(
        app.http,
        "GET /liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served beside two"
    );
    held.pop();
    let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once a place was free")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_carries_on() {
    use tower::ServiceExt as _;
    let rest = axum::Router::new().route(
        "/api/boom",
        axum::routing::get(|| async {
            let bug = "a handler bug".parse::<u8>();
            #[allow(clippy::expect_used, reason = "the panic under test")]
            bug.map(|n| n.to_string()).expect("a handler bug")
        }),
    );
    let config = host::Config::for_tests(db::Target::Sqlite(".".into()));
    let app = host::http_edge(
        rest,
        utoipa::openapi::OpenApi::default(),
        Vec::new(),
        &config,
    )
    .unwrap();
    let request = || {
        axum::http::Request::get("/api/boom")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    for _ in 0..2 {
        let answer = app.clone().oneshot(request()).await.unwrap();
        assert_eq!(answer.status(), 500);
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], 13, "{body}");
    }
}

/// Each answers 400 with the book's body, the same on both backends.
async fn input_that_would_break_an_order_is_refused(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    let mall = app.mall(100.0).await;
    let refused = |answer: (u16, Value), what: &str| {
        assert_eq!(answer.0, 400, "{what}: {}", answer.1);
        assert_eq!(
            answer.1["code"].as_i64().map(|c| c == 3 || c == 9),
            Some(true),
            "{what}: {}",
            answer.1
        );
    };
    let products = format!("/api/stores/{}/products", mall.store);
    let huge = json!({"name": "Huge", "description": "", "sku": "H", "price": 1.7e308});
    refused(
        app.json(Method::POST, &products, huge).await,
        "a price of 1.7e308",
    );
    let payment = json!({"customerId": mall.customer, "amount": 1e300});
    refused(
        app.json(Method::POST, "/api/payments", payment).await,
        "an amount of 1e300",
    );

    let basket = app
        .create("/api/baskets", json!({"customerId": mall.customer}))
        .await;
    let add = format!("/api/baskets/{basket}/addItem");
    let most = json!({"productId": mall.product, "quantity": i32::MAX});
    refused(
        app.json(Method::PUT, &add, most).await,
        "2147483647 of an item",
    );
    let many = json!({"productId": mall.product, "quantity": 9_000});
    assert_eq!(app.json(Method::PUT, &add, many.clone()).await.0, 200);
    refused(app.json(Method::PUT, &add, many).await, "18000 of an item");

    let nul = json!({"name": "Store\u{0}ABC", "location": "Level 1"});
    refused(
        app.json(Method::POST, "/api/stores", nul).await,
        "a NUL in a name",
    );
    let (status, _) = app
        .json(Method::GET, "/api/stores/abc%00def", Value::Null)
        .await;
    assert_eq!(status, 400, "a NUL in a path id");
    let long = json!({"name": "x".repeat(2_000), "location": "Level 1"});
    refused(
        app.json(Method::POST, "/api/stores", long).await,
        "a 2,000-character name",
    );
    let ids: Vec<String> = (0..5_000).map(|n| format!("store-{n}")).collect();
    let filter = json!({"filters": {"storeIds": ids}});
    refused(
        app.json(Method::POST, "/api/search/orders", filter).await,
        "5,000 store ids",
    );
    refused(
        app.json(Method::POST, "/api/depot/shopping", json!({}))
            .await,
        "an empty shopping list",
    );

    // The mall's own route, whose prices are the caller's: still counted, in whole cents.
    let order = |items: Value| json!({"items": items, "customerId": mall.customer, "paymentId": mall.payment});
    let item = |price: f64, quantity: i64| {
        json!({"productId": mall.product, "storeId": mall.store, "productName": "P",
            "storeName": "S", "price": price, "quantity": quantity})
    };
    for (items, what) in [
        (json!([item(1e6, 20_000)]), "20,000 of an item"),
        (json!([item(1e300, 1)]), "a price of 1e300"),
        (json!([item(9.99, -2)]), "a negative quantity"),
        (json!([item(-9.99, 2)]), "a negative price"),
    ] {
        refused(
            app.json(Method::POST, "/api/ordering", order(items)).await,
            what,
        );
    }
    let (status, created) = app
        .json(
            Method::POST,
            "/api/ordering",
            order(json!([item(0.1, 1), item(0.2, 1)])),
        )
        .await;
    assert_eq!(status, 200, "{created}");
}

/// PostgreSQL stopped under the mall (a server of the test's own): requests wait up to the
/// acquire timeout and answer 503 with `Retry-After`, never 500; started again, the mall
/// carries on.
#[tokio::test]
async fn a_database_restart_answers_503_then_carries_on() {
    if !db::testing::is_selected(Backend::Postgres) {
        return;
    }
    let server = db::testing::PrivatePostgres::start(false);
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());
    let app = spawn_app_with(&["stores"], Backend::Postgres, move |c| {
        c.pg_conn = Some(url);
        c.db_acquire_timeout = Duration::from_secs(1);
    })
    .await;
    let shop = json!({"name": "Open all hours", "location": "Level 1"});
    assert_eq!(
        app.json(Method::POST, "/api/stores", shop.clone()).await.0,
        200
    );

    server.stop();
    for _ in 0..3 {
        let answer = app
            .send(Method::POST, "/api/stores", shop.to_string())
            .await;
        assert_eq!(answer.status(), 503, "while the database is down");
        assert_eq!(answer.headers()["retry-after"], "1");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], 14, "{body}");
    }
    server.start_again();
    testkit::until(|| async {
        match app.json(Method::POST, "/api/stores", shop.clone()).await {
            (200, _) => Ok(()),
            (status, body) if status == 503 => Err(format!("still {status}: {body}")),
            (status, body) => panic!("{status} after the restart: {body}"),
        }
    })
    .await;
}
