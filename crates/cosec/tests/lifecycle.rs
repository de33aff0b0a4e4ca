//! The order lifecycle through the whole mall (all modules in one app), on each backend:
//! basket → checkout → saga → approved → bot picks → ready → invoice paid → completed, and the
//! saga's failure paths.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, spawn_app};

db::backend_tests!(
    an_order_goes_from_basket_to_completed,
    a_disabled_customer_gets_a_rejected_order_and_no_list,
    a_payment_too_small_cancels_the_list_and_rejects_the_order,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&mallbots_modules(), backend).await
}

fn mallbots_modules() -> Vec<&'static str> {
    vec![
        "stores",
        "customers",
        "payments",
        "baskets",
        "ordering",
        "depot",
        "cosec",
        "search",
    ]
}

async fn id(app: &TestApp, path: &str, body: Value) -> String {
    let (status, reply) = app.json(Method::POST, path, body).await;
    assert_eq!(status, 200, "{path}: {reply}");
    reply["id"].as_str().unwrap().to_owned()
}

/// Polls `path` until `field` equals `expected`, for at most 15 s; the last body.
async fn eventually(app: &TestApp, path: &str, field: &[&str], expected: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = app.json(Method::GET, path, Value::Null).await;
        let value = field.iter().fold(&body, |v, key| &v[*key]);
        if status == 200 && value == expected {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{path} {field:?} never became {expected}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The book's sample flow up to checkout; returns (order id, customer id).
async fn checkout(app: &TestApp, authorized: f64, disable_customer: bool) -> (String, String) {
    let store = id(
        app,
        "/api/stores",
        json!({"name": "Store ABC", "location": "The mall"}),
    )
    .await;
    let product = json!({"name": "Product ABC", "description": "A product", "sku": "productABC", "price": 9.99});
    let product = id(app, &format!("/api/stores/{store}/products"), product).await;
    let customer = id(
        app,
        "/api/customers",
        json!({"name": "Customer ABC", "smsNumber": "555-555-1212"}),
    )
    .await;
    let payment = id(
        app,
        "/api/payments",
        json!({"customerId": customer, "amount": authorized}),
    )
    .await;
    let basket = id(app, "/api/baskets", json!({"customerId": customer})).await;
    let (status, body) = app
        .json(
            Method::PUT,
            &format!("/api/baskets/{basket}/addItem"),
            json!({"productId": product, "quantity": 5}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    if disable_customer {
        app.json(
            Method::PUT,
            &format!("/api/customers/{customer}/disable"),
            json!({}),
        )
        .await;
    }
    let (status, body) = app
        .json(
            Method::PUT,
            &format!("/api/baskets/{basket}/checkout"),
            json!({"paymentId": payment}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (basket, customer)
}

async fn an_order_goes_from_basket_to_completed(backend: Backend) {
    let app = app(backend).await;
    let (order, _) = checkout(&app, 200.0, false).await;
    let approved = eventually(
        &app,
        &format!("/api/ordering/{order}"),
        &["order", "status"],
        "approved",
    )
    .await;
    let list = approved["order"]["shoppingId"].as_str().unwrap().to_owned();
    let search = format!("/api/search/orders/{order}");
    let found = eventually(&app, &search, &["order", "status"], "approved").await;
    assert_eq!(found["order"]["customerName"], json!("Customer ABC"));
    assert_eq!(found["order"]["total"], json!(49.95));
    eventually(
        &app,
        &format!("/api/depot/shopping/{list}"),
        &["shoppingList", "status"],
        "available",
    )
    .await;
    let saga = eventually(
        &app,
        &format!("/api/cosec/sagas/{order}"),
        &["saga", "status"],
        "completed",
    )
    .await;
    assert_eq!(saga["saga"]["shoppingId"], json!(list));

    // A bot takes the list and fetches everything.
    assert_eq!(
        app.json(
            Method::PUT,
            &format!("/api/depot/shopping/{list}/assign"),
            json!({"botId": "bot-1"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        app.json(
            Method::PUT,
            &format!("/api/depot/shopping/{list}/complete"),
            json!({})
        )
        .await
        .0,
        200
    );
    eventually(
        &app,
        &format!("/api/ordering/{order}"),
        &["order", "status"],
        "ready",
    )
    .await;
    eventually(&app, &search, &["order", "status"], "ready").await;
    let invoice = eventually(
        &app,
        &format!("/api/payments/invoices/{order}"),
        &["invoice", "status"],
        "pending",
    )
    .await;
    assert_eq!(invoice["invoice"]["amount"], json!(49.95));

    assert_eq!(
        app.json(
            Method::PUT,
            &format!("/api/payments/invoices/{order}/pay"),
            json!({})
        )
        .await
        .0,
        200
    );
    let completed = eventually(
        &app,
        &format!("/api/ordering/{order}"),
        &["order", "status"],
        "completed",
    )
    .await;
    assert_eq!(completed["order"]["invoiceId"], json!(order));
    eventually(&app, &search, &["order", "status"], "completed").await;
}

async fn a_disabled_customer_gets_a_rejected_order_and_no_list(backend: Backend) {
    let app = app(backend).await;
    let (order, _) = checkout(&app, 200.0, true).await;
    eventually(
        &app,
        &format!("/api/ordering/{order}"),
        &["order", "status"],
        "rejected",
    )
    .await;
    let search = format!("/api/search/orders/{order}");
    eventually(&app, &search, &["order", "status"], "rejected").await;
    let saga = eventually(
        &app,
        &format!("/api/cosec/sagas/{order}"),
        &["saga", "status"],
        "compensated",
    )
    .await;
    let sent: Vec<&str> = saga["saga"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "sent")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        ["customersapi.AuthorizeCustomer", "ordersapi.RejectOrder"]
    );
    for status in ["pending", "available", "canceled"] {
        let (_, lists) = app
            .json(
                Method::GET,
                &format!("/api/depot/shopping?status={status}"),
                Value::Null,
            )
            .await;
        assert_eq!(lists["shoppingLists"], json!([]), "no {status} list");
    }
}

async fn a_payment_too_small_cancels_the_list_and_rejects_the_order(backend: Backend) {
    let app = app(backend).await;
    let (order, _) = checkout(&app, 10.0, false).await;
    eventually(
        &app,
        &format!("/api/ordering/{order}"),
        &["order", "status"],
        "rejected",
    )
    .await;
    let saga = eventually(
        &app,
        &format!("/api/cosec/sagas/{order}"),
        &["saga", "status"],
        "compensated",
    )
    .await;
    let list = saga["saga"]["shoppingId"].as_str().unwrap().to_owned();
    eventually(
        &app,
        &format!("/api/depot/shopping/{list}"),
        &["shoppingList", "status"],
        "canceled",
    )
    .await;
}
