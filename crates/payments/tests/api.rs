//! The payments module through the running app (with customers, whom it asks over gRPC), on
//! each backend. Ordering is not mounted: its events are published here as ordering would.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use messaging::Message;
use prost::Message as _;
use proto::{ordering, payments as pb};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, error_body as error, spawn_app};

db::backend_tests!(
    a_payment_is_authorized_for_a_known_customer,
    authorizations_are_validated,
    confirm_payment_commands_are_answered,
    a_ready_order_is_invoiced_once_and_paid_once,
    a_canceled_order_cancels_its_pending_invoice,
    unknown_invoices_are_not_found,
    malformed_json_is_a_400_with_the_error_body,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&["customers", "payments"], backend).await
}

async fn customer(app: &TestApp) -> String {
    let (_, body) = app
        .json(
            Method::POST,
            "/api/customers",
            json!({"name": "Customer ABC", "smsNumber": "555-555-1212"}),
        )
        .await;
    body["id"].as_str().unwrap().to_owned()
}

async fn authorize(app: &TestApp, customer: &str, amount: f64) -> String {
    // The book's sample request (create_order.http).
    let (status, body) = app
        .json(
            Method::POST,
            "/api/payments",
            json!({"customerId": customer, "amount": amount}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn invoice(app: &TestApp, id: &str) -> (u16, Value) {
    app.json(
        Method::GET,
        &format!("/api/payments/invoices/{id}"),
        Value::Null,
    )
    .await
}

/// Waits until the invoice has `status`; the answer.
async fn invoice_status(app: &TestApp, id: &str, status: &str) -> Value {
    let path = format!("/api/payments/invoices/{id}");
    app.eventually(&path, "/invoice/status", status).await
}

async fn a_payment_is_authorized_for_a_known_customer(backend: Backend) {
    let app = app(backend).await;
    let customer = customer(&app).await;
    let id = authorize(&app, &customer, 200.0).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::payments_service_client::PaymentsServiceClient::new(channel);
    let found = client
        .get_payment(pb::GetPaymentRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(
        found,
        pb::Payment {
            id: id.clone(),
            customer_id: customer,
            amount: 200.0
        }
    );
    let missing = client
        .get_payment(pb::GetPaymentRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (tonic::Code::NotFound, "payment with that ID does not exist")
    );
    client
        .confirm_payment(pb::ConfirmPaymentRequest { id })
        .await
        .unwrap();
    let unconfirmed = client
        .confirm_payment(pb::ConfirmPaymentRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(
        (unconfirmed.code(), unconfirmed.message()),
        (tonic::Code::NotFound, "payment cannot be confirmed")
    );
}

async fn authorizations_are_validated(backend: Backend) {
    let app = app(backend).await;
    let customer = customer(&app).await;
    let pay = |body: Value| app.json(Method::POST, "/api/payments", body);
    assert_eq!(
        pay(json!({"customerId": customer, "amount": 0})).await,
        (400, error(3, "the payment amount must be positive"))
    );
    assert_eq!(
        pay(json!({"customerId": customer, "amount": -3.5})).await,
        (400, error(3, "the payment amount must be positive"))
    );
    assert_eq!(
        pay(json!({"amount": 10})).await,
        (400, error(3, "the customer id cannot be blank"))
    );
    assert_eq!(
        pay(json!({"customerId": "nobody", "amount": 10})).await,
        (404, error(5, "customer with that ID does not exist"))
    );
}

fn confirm(payment: &str, amount: f64, saga: &str) -> Message {
    Message::new(
        pb::COMMAND_CHANNEL,
        pb::CONFIRM_PAYMENT_COMMAND,
        &pb::ConfirmPayment {
            id: payment.into(),
            amount,
        },
    )
    .with_metadata(
        "COMMAND_REPLY_CHANNEL",
        proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
    )
    .with_metadata("COMMAND_SAGA_ID", saga)
    .with_metadata("COMMAND_SAGA_NAME", "cosec.CreateOrder")
}

async fn confirm_payment_commands_are_answered(backend: Backend) {
    let app = app(backend).await;
    let customer = customer(&app).await;
    let payment = authorize(&app, &customer, 50.0).await;
    let commands = [
        confirm(&payment, 49.95, "ok"),
        confirm(&payment, 50.01, "too-much"),
        confirm("nope", 1.0, "unknown"),
    ];
    for command in &commands {
        app.publish(command).await;
    }
    // The first command, delivered again: still one reply.
    app.publish_as(&commands[0], "again").await;
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 3)
        .await;
    let settled = Duration::from_millis(500);
    assert_eq!(
        app.messages_within(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 4, settled)
            .await
            .len(),
        3
    );
    let mut outcomes: Vec<(&str, &str)> = replies
        .iter()
        .map(|r| {
            (
                r.metadata["REPLY_SAGA_ID"].as_str(),
                r.metadata["REPLY_OUTCOME"].as_str(),
            )
        })
        .collect();
    // Different sagas' commands are handled concurrently: their replies come in any order.
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        [
            ("ok", "SUCCESS"),
            ("too-much", "FAILURE"),
            ("unknown", "FAILURE")
        ]
    );
}

fn readied(order: &str, total: f64) -> Message {
    let event = ordering::OrderReadied {
        id: order.into(),
        customer_id: "c1".into(),
        payment_id: "p1".into(),
        total,
    };
    Message::new(
        ordering::ORDER_AGGREGATE_CHANNEL,
        ordering::ORDER_READIED_EVENT,
        &event,
    )
    .about(order)
}

async fn a_ready_order_is_invoiced_once_and_paid_once(backend: Backend) {
    let app = app(backend).await;
    let ready = readied("order-1", 49.95);
    app.publish(&ready).await;
    app.publish_as(&ready, "redelivered").await;
    let pending = invoice_status(&app, "order-1", "pending").await;
    assert_eq!(
        pending,
        json!({"invoice": {"id": "order-1", "orderId": "order-1", "amount": 49.95, "status": "pending"}})
    );

    let pay = "/api/payments/invoices/order-1/pay";
    assert_eq!(
        app.json(Method::PUT, pay, json!({})).await,
        (200, json!({}))
    );
    assert_eq!(
        invoice(&app, "order-1").await.1["invoice"]["status"],
        "paid"
    );
    assert_eq!(
        app.json(Method::PUT, pay, json!({})).await,
        (400, error(9, "invoice cannot be paid for"))
    );

    let paid = app
        .messages_within(pb::INVOICE_AGGREGATE_CHANNEL, 2, Duration::from_secs(2))
        .await;
    assert_eq!(paid.len(), 1, "paid once");
    assert_eq!(paid[0].name, "paymentsapi.InvoicePaid");
    assert_eq!(
        pb::InvoicePaid::decode(paid[0].payload.as_slice()).unwrap(),
        pb::InvoicePaid {
            id: "order-1".into(),
            order_id: "order-1".into()
        }
    );
}

async fn a_canceled_order_cancels_its_pending_invoice(backend: Backend) {
    let app = app(backend).await;
    let ready = readied("order-2", 10.0);
    app.publish(&ready).await;
    invoice_status(&app, "order-2", "pending").await;
    let event = ordering::OrderCanceled {
        id: "order-2".into(),
        customer_id: "c1".into(),
        payment_id: "p1".into(),
    };
    let canceled = Message::new(
        ordering::ORDER_AGGREGATE_CHANNEL,
        ordering::ORDER_CANCELED_EVENT,
        &event,
    )
    .about("order-2");
    app.publish(&canceled).await;
    invoice_status(&app, "order-2", "canceled").await;
    let pay = app
        .json(Method::PUT, "/api/payments/invoices/order-2/pay", json!({}))
        .await;
    assert_eq!(pay, (400, error(9, "invoice cannot be paid for")));
    // Canceling an order that was never invoiced has nothing to undo.
    let other = ordering::OrderCanceled {
        id: "order-3".into(),
        ..event
    };
    let message = Message::new(
        ordering::ORDER_AGGREGATE_CHANNEL,
        ordering::ORDER_CANCELED_EVENT,
        &other,
    );
    app.publish(&message).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(invoice(&app, "order-3").await.0, 404);
}

async fn unknown_invoices_are_not_found(backend: Backend) {
    let app = app(backend).await;
    let missing = error(5, "invoice with that ID does not exist");
    assert_eq!(invoice(&app, "nope").await, (404, missing.clone()));
    assert_eq!(
        app.json(Method::PUT, "/api/payments/invoices/nope/pay", json!({}))
            .await,
        (404, missing)
    );
}

async fn malformed_json_is_a_400_with_the_error_body(backend: Backend) {
    let app = app(backend).await;
    let response = app
        .send(
            Method::POST,
            "/api/payments",
            r#"{"customerId": "c", "amount": "lots"}"#,
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (&body["code"], &body["details"]),
        (&json!(3), &json!([])),
        "{body}"
    );
}
