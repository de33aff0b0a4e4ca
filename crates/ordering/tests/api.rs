//! The ordering module through the running app, on each backend. The saga and the depot are
//! not mounted here: their commands and events are published as they would publish them.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use messaging::{Envelope, Message};
use prost::Message as _;
use proto::ordering as pb;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, error_body as error, spawn_app};

db::backend_tests!(
    a_checkout_becomes_a_pending_order_once,
    an_approved_order_is_readied_invoiced_paid_and_completed,
    a_rejected_order_refuses_a_late_approval,
    a_pending_order_is_cancelled_once,
    orders_can_be_created_over_rest_and_are_validated,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(
        &["stores", "customers", "payments", "baskets", "ordering"],
        backend,
    )
    .await
}

/// A basket of 5 × 9.99, checked out: returns (order id = basket id, customer, payment).
async fn checkout(app: &TestApp) -> (String, String, String) {
    let mall = app.mall(200.0).await;
    let basket = app.checkout(&mall, 5).await;
    (basket, mall.customer, mall.payment)
}

/// Waits until the order's status is `status`; the order.
async fn order_status(app: &TestApp, id: &str, status: &str) -> Value {
    let path = format!("/api/ordering/{id}");
    app.eventually(&path, "/order/status", status).await["order"].take()
}

fn command(name: &str, payload: &impl prost::Message, saga: &str) -> Message {
    Message::new(pb::COMMAND_CHANNEL, name, payload)
        .with_metadata(
            "COMMAND_REPLY_CHANNEL",
            proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
        )
        .with_metadata("COMMAND_SAGA_ID", saga)
        .with_metadata("COMMAND_SAGA_NAME", "cosec.CreateOrder")
}

fn names(messages: &[Envelope]) -> Vec<&str> {
    messages.iter().map(|m| m.name.as_str()).collect()
}

async fn a_checkout_becomes_a_pending_order_once(backend: Backend) {
    let app = app(backend).await;
    let (order, customer, payment) = checkout(&app).await;
    let pending = order_status(&app, &order, "pending").await;
    assert_eq!(
        (
            &pending["customerId"],
            &pending["paymentId"],
            &pending["shoppingId"]
        ),
        (&json!(customer), &json!(payment), &json!(""))
    );
    assert_eq!(pending["items"][0]["quantity"], 5);
    // The checkout again, as a redelivery under another message id: still one order.
    let checked_out = app
        .messages(proto::baskets::BASKET_AGGREGATE_CHANNEL, 2)
        .await;
    let again = Message {
        subject: proto::baskets::BASKET_AGGREGATE_CHANNEL.into(),
        envelope: checked_out[1].clone(),
    };
    app.publish_as(&again, "redelivered-checkout").await;
    let created = app
        .messages_within(pb::ORDER_AGGREGATE_CHANNEL, 2, Duration::from_secs(2))
        .await;
    assert_eq!(names(&created), ["ordersapi.OrderCreated"]);
    let event = pb::OrderCreated::decode(created[0].payload.as_slice()).unwrap();
    assert_eq!(
        (
            event.id.as_str(),
            event.shopping_id.as_str(),
            event.items[0].quantity
        ),
        (order.as_str(), "", 5)
    );
}

async fn an_approved_order_is_readied_invoiced_paid_and_completed(backend: Backend) {
    let app = app(backend).await;
    let (order, _, _) = checkout(&app).await;
    order_status(&app, &order, "pending").await;
    app.publish(&command(
        pb::APPROVE_ORDER_COMMAND,
        &pb::ApproveOrder {
            id: order.clone(),
            shopping_id: "list-1".into(),
        },
        "saga-1",
    ))
    .await;
    let approved = order_status(&app, &order, "approved").await;
    assert_eq!(approved["shoppingId"], "list-1");
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 1)
        .await;
    assert_eq!(replies[0].metadata["REPLY_OUTCOME"], "SUCCESS");

    // The bot finished the list: the order is ready, and payments invoices it (id = order id).
    let completed = proto::depot::ShoppingListCompleted {
        id: "list-1".into(),
        order_id: order.clone(),
    };
    app.publish(&Message::new(
        proto::depot::SHOPPING_LIST_AGGREGATE_CHANNEL,
        proto::depot::SHOPPING_LIST_COMPLETED_EVENT,
        &completed,
    ))
    .await;
    order_status(&app, &order, "ready").await;
    let started = Instant::now();
    while app
        .json(
            Method::GET,
            &format!("/api/payments/invoices/{order}"),
            Value::Null,
        )
        .await
        .0
        != 200
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no invoice");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let done = order_status(&app, &order, "completed").await;
    assert_eq!(done["invoiceId"], json!(order));

    let events = app.messages(pb::ORDER_AGGREGATE_CHANNEL, 4).await;
    assert_eq!(
        names(&events),
        [
            "ordersapi.OrderCreated",
            "ordersapi.OrderApproved",
            "ordersapi.OrderReadied",
            "ordersapi.OrderCompleted"
        ]
    );
    let readied = pb::OrderReadied::decode(events[2].payload.as_slice()).unwrap();
    assert!((readied.total - 49.95).abs() < 1e-9, "{readied:?}");
}

async fn a_rejected_order_refuses_a_late_approval(backend: Backend) {
    let app = app(backend).await;
    let (order, _, _) = checkout(&app).await;
    order_status(&app, &order, "pending").await;
    app.publish(&command(
        pb::REJECT_ORDER_COMMAND,
        &pb::RejectOrder { id: order.clone() },
        "saga-1",
    ))
    .await;
    order_status(&app, &order, "rejected").await;
    app.publish(&command(
        pb::APPROVE_ORDER_COMMAND,
        &pb::ApproveOrder {
            id: order.clone(),
            shopping_id: "l".into(),
        },
        "saga-2",
    ))
    .await;
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 2)
        .await;
    let outcomes: Vec<_> = replies
        .iter()
        .map(|r| {
            (
                r.metadata["REPLY_SAGA_ID"].as_str(),
                r.metadata["REPLY_OUTCOME"].as_str(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("saga-1", "SUCCESS"), ("saga-2", "FAILURE")]);
    let events = app.messages(pb::ORDER_AGGREGATE_CHANNEL, 2).await;
    assert_eq!(
        names(&events),
        ["ordersapi.OrderCreated", "ordersapi.OrderRejected"]
    );
}

async fn a_pending_order_is_cancelled_once(backend: Backend) {
    let app = app(backend).await;
    let (order, _, _) = checkout(&app).await;
    order_status(&app, &order, "pending").await;
    let path = format!("/api/ordering/{order}");
    assert_eq!(
        app.json(Method::DELETE, &path, Value::Null).await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(Method::DELETE, &path, Value::Null).await,
        (400, error(9, "the order cannot be cancelled"))
    );
    assert_eq!(
        order_status(&app, &order, "cancelled").await["status"],
        "cancelled"
    );
    let events = app.messages(pb::ORDER_AGGREGATE_CHANNEL, 2).await;
    assert_eq!(
        names(&events),
        ["ordersapi.OrderCreated", "ordersapi.OrderCanceled"]
    );
    assert_eq!(
        app.json(Method::DELETE, "/api/ordering/nope", Value::Null)
            .await,
        (404, error(5, "order with that ID does not exist"))
    );
    assert_eq!(
        app.json(Method::GET, "/api/ordering/nope", Value::Null)
            .await
            .0,
        404
    );
}

async fn orders_can_be_created_over_rest_and_are_validated(backend: Backend) {
    let app = app(backend).await;
    let item = json!({"storeId": "s", "productId": "p", "storeName": "S", "productName": "P", "price": 2.5, "quantity": 2});
    assert_eq!(
        app.json(
            Method::POST,
            "/api/ordering",
            json!({"customerId": "c", "paymentId": "p"})
        )
        .await,
        (400, error(3, "the order has no items"))
    );
    assert_eq!(
        app.json(
            Method::POST,
            "/api/ordering",
            json!({"items": [item], "paymentId": "p"})
        )
        .await,
        (400, error(3, "the customer id cannot be blank"))
    );
    assert_eq!(
        app.json(
            Method::POST,
            "/api/ordering",
            json!({"items": [item], "customerId": "c"})
        )
        .await,
        (400, error(3, "the payment id cannot be blank"))
    );
    let order = app
        .create(
            "/api/ordering",
            json!({"items": [item], "customerId": "c", "paymentId": "p"}),
        )
        .await;
    let pending = order_status(&app, &order, "pending").await;
    assert_eq!(pending["items"][0], item);
}
