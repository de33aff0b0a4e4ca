//! The search read model through the running app (with stores and customers), on each backend.
//! Ordering is not mounted: its events are published here as it would publish them.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use messaging::Message;
use proto::ordering as pb;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, spawn_app};

db::backend_tests!(
    orders_are_projected_with_names_and_follow_their_status,
    every_filter_and_paging_work
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&["stores", "customers", "search"], backend).await
}

struct Mall {
    customer: String,
    store: String,
    product: String,
}

async fn mall(app: &TestApp, customer: &str) -> Mall {
    let store = app
        .create(
            "/api/stores",
            json!({"name": format!("Store of {customer}"), "location": "L1"}),
        )
        .await;
    let product = app
        .create(
            &format!("/api/stores/{store}/products"),
            json!({"name": format!("Thing of {customer}"), "price": 2.5}),
        )
        .await;
    let customer = app
        .create(
            "/api/customers",
            json!({"name": customer, "smsNumber": "555"}),
        )
        .await;
    Mall {
        customer,
        store,
        product,
    }
}

fn created(order: &str, mall: &Mall, quantity: i32) -> Message {
    let item = pb::order_created::Item {
        product_id: mall.product.clone(),
        store_id: mall.store.clone(),
        price: 2.5,
        quantity,
    };
    let event = pb::OrderCreated {
        id: order.into(),
        customer_id: mall.customer.clone(),
        payment_id: "pay".into(),
        shopping_id: String::new(),
        items: vec![item],
    };
    Message::new(pb::ORDER_AGGREGATE_CHANNEL, pb::ORDER_CREATED_EVENT, &event).about(order)
}

async fn eventually_status(app: &TestApp, order: &str, status: &str) -> Value {
    let path = format!("/api/search/orders/{order}");
    app.eventually(&path, "/order/status", status).await["order"].take()
}

async fn orders_are_projected_with_names_and_follow_their_status(backend: Backend) {
    let app = app(backend).await;
    let mall = mall(&app, "Ada").await;
    let create = created("o1", &mall, 4);
    app.publish(&create).await;
    app.publish_as(&create, "again").await;
    let order = eventually_status(&app, "o1", "pending").await;
    let item = json!({"productId": mall.product, "storeId": mall.store, "productName": "Thing of Ada", "storeName": "Store of Ada", "price": 2.5, "quantity": "4"});
    assert_eq!(
        order,
        json!({"orderId": "o1", "customerId": mall.customer, "customerName": "Ada", "items": [item], "total": 10.0, "status": "pending"})
    );
    let events: [(&str, Message); 3] = [
        (
            "approved",
            Message::new(
                pb::ORDER_AGGREGATE_CHANNEL,
                pb::ORDER_APPROVED_EVENT,
                &pb::OrderApproved {
                    id: "o1".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "ready",
            Message::new(
                pb::ORDER_AGGREGATE_CHANNEL,
                pb::ORDER_READIED_EVENT,
                &pb::OrderReadied {
                    id: "o1".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "completed",
            Message::new(
                pb::ORDER_AGGREGATE_CHANNEL,
                pb::ORDER_COMPLETED_EVENT,
                &pb::OrderCompleted {
                    id: "o1".into(),
                    ..Default::default()
                },
            ),
        ),
    ];
    for (status, event) in events {
        app.publish(&event.about("o1")).await;
        eventually_status(&app, "o1", status).await;
    }
    let (code, missing) = app
        .json(Method::GET, "/api/search/orders/nope", Value::Null)
        .await;
    assert_eq!(
        (code, &missing["message"]),
        (404, &json!("order with that ID does not exist"))
    );
}

async fn search(app: &TestApp, body: Value) -> (Vec<String>, String) {
    let (status, reply) = app.json(Method::POST, "/api/search/orders", body).await;
    assert_eq!(status, 200, "{reply}");
    let ids = reply["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect();
    (ids, reply["next"].as_str().unwrap().to_owned())
}

async fn every_filter_and_paging_work(backend: Backend) {
    let app = app(backend).await;
    let (ada, bob) = (mall(&app, "Ada").await, mall(&app, "Bob").await);
    let before_all = chrono::Utc::now().to_rfc3339();
    for (order, mall, quantity) in [("a1", &ada, 1), ("a2", &ada, 10), ("b1", &bob, 4)] {
        app.publish(&created(order, mall, quantity)).await;
        eventually_status(&app, order, "pending").await;
    }
    let rejected = pb::OrderRejected {
        id: "b1".into(),
        ..Default::default()
    };
    app.publish(
        &Message::new(
            pb::ORDER_AGGREGATE_CHANNEL,
            pb::ORDER_REJECTED_EVENT,
            &rejected,
        )
        .about("b1"),
    )
    .await;
    eventually_status(&app, "b1", "rejected").await;

    // Newest first.
    assert_eq!(search(&app, json!({})).await.0, ["b1", "a2", "a1"]);
    assert_eq!(
        search(&app, json!({"filters": {"customerId": ada.customer}}))
            .await
            .0,
        ["a2", "a1"]
    );
    assert_eq!(
        search(&app, json!({"filters": {"storeIds": [bob.store]}}))
            .await
            .0,
        ["b1"]
    );
    assert_eq!(
        search(
            &app,
            json!({"filters": {"productIds": [ada.product, bob.product]}})
        )
        .await
        .0,
        ["b1", "a2", "a1"]
    );
    assert_eq!(
        search(&app, json!({"filters": {"minTotal": 5.0}})).await.0,
        ["b1", "a2"]
    );
    assert_eq!(
        search(&app, json!({"filters": {"maxTotal": 10.0}})).await.0,
        ["b1", "a1"]
    );
    assert_eq!(
        search(&app, json!({"filters": {"status": "rejected"}}))
            .await
            .0,
        ["b1"]
    );
    assert_eq!(
        search(&app, json!({"filters": {"after": before_all}}))
            .await
            .0
            .len(),
        3
    );
    assert_eq!(
        search(&app, json!({"filters": {"before": before_all}}))
            .await
            .0
            .len(),
        0
    );

    let (first, next) = search(&app, json!({"limit": 2})).await;
    assert_eq!(first, ["b1", "a2"]);
    let (second, last) = search(&app, json!({"limit": 2, "next": next})).await;
    assert_eq!((second, last.as_str()), (vec!["a1".to_owned()], ""));

    let (code, bad) = app
        .json(
            Method::POST,
            "/api/search/orders",
            json!({"next": "garbage"}),
        )
        .await;
    assert_eq!((code, &bad["code"]), (400, &json!(3)));
    let (code, _) = app
        .json(
            Method::POST,
            "/api/search/orders",
            json!({"filters": {"after": "yesterday"}}),
        )
        .await;
    assert_eq!(code, 400);
}
