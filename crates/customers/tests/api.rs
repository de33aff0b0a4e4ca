//! The customers module through the running app (REST, gRPC, commands), on each backend.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use messaging::Message;
use prost::Message as _;
use proto::customers as pb;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, error_body as error, spawn_app};

db::backend_tests!(
    a_customer_is_registered_read_and_announced,
    registration_is_validated_with_the_books_messages,
    customers_are_enabled_and_disabled_once_each_way,
    the_sms_number_changes_and_is_announced,
    unknown_customers_are_not_found,
    malformed_json_is_a_400_with_the_error_body,
    authorize_customer_commands_are_answered,
    a_command_delivered_twice_is_answered_once,
    grpc_authorize_refuses_a_disabled_customer,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&["customers"], backend).await
}

async fn register(app: &TestApp) -> String {
    // The book's sample request (create_order.http).
    let (status, body) = app
        .json(
            Method::POST,
            "/api/customers",
            json!({"name": "Customer ABC", "smsNumber": "555-555-1212"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn a_customer_is_registered_read_and_announced(backend: Backend) {
    let app = app(backend).await;
    let id = register(&app).await;
    let customer = json!({"customer": {"id": id, "name": "Customer ABC", "smsNumber": "555-555-1212", "enabled": true}});
    assert_eq!(
        app.json(Method::GET, &format!("/api/customers/{id}"), Value::Null)
            .await,
        (200, customer)
    );
    let messages = app.messages(pb::CUSTOMER_AGGREGATE_CHANNEL, 1).await;
    assert_eq!(messages[0].name, "customersapi.CustomerRegistered");
    let event = pb::CustomerRegistered::decode(messages[0].payload.as_slice()).unwrap();
    assert_eq!(
        event,
        pb::CustomerRegistered {
            id,
            name: "Customer ABC".into(),
            sms_number: "555-555-1212".into()
        }
    );
}

async fn registration_is_validated_with_the_books_messages(backend: Backend) {
    let app = app(backend).await;
    let no_name = app
        .json(Method::POST, "/api/customers", json!({"smsNumber": "555"}))
        .await;
    assert_eq!(
        no_name,
        (400, error(3, "the customer name cannot be blank"))
    );
    let no_number = app
        .json(Method::POST, "/api/customers", json!({"name": "Ada"}))
        .await;
    assert_eq!(no_number, (400, error(3, "the SMS number cannot be blank")));
    let snake_case = app
        .json(
            Method::POST,
            "/api/customers",
            json!({"name": "Ada", "sms_number": "555"}),
        )
        .await;
    assert_eq!(
        snake_case.0, 200,
        "grpc-gateway also accepts the proto field names"
    );
}

async fn customers_are_enabled_and_disabled_once_each_way(backend: Backend) {
    let app = app(backend).await;
    let id = register(&app).await;
    let path = |action: &str| format!("/api/customers/{id}/{action}");
    assert_eq!(
        app.json(Method::PUT, &path("enable"), json!({})).await,
        (400, error(9, "the customer is already enabled"))
    );
    assert_eq!(
        app.json(Method::PUT, &path("disable"), json!({})).await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(Method::PUT, &path("disable"), json!({})).await,
        (400, error(9, "the customer is already disabled"))
    );
    let (_, customer) = app
        .json(Method::GET, &format!("/api/customers/{id}"), Value::Null)
        .await;
    assert_eq!(customer["customer"]["enabled"], false);
    assert_eq!(
        app.json(Method::PUT, &path("enable"), json!({})).await,
        (200, json!({}))
    );
    let names: Vec<String> = app
        .messages(pb::CUSTOMER_AGGREGATE_CHANNEL, 3)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        [
            "customersapi.CustomerRegistered",
            "customersapi.CustomerDisabled",
            "customersapi.CustomerEnabled"
        ]
    );
}

async fn the_sms_number_changes_and_is_announced(backend: Backend) {
    let app = app(backend).await;
    let id = register(&app).await;
    let path = format!("/api/customers/{id}/change-sms");
    assert_eq!(
        app.json(Method::PUT, &path, json!({"smsNumber": "555-000-0000"}))
            .await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(Method::PUT, &path, json!({"smsNumber": ""})).await,
        (400, error(3, "the SMS number cannot be blank"))
    );
    let (_, customer) = app
        .json(Method::GET, &format!("/api/customers/{id}"), Value::Null)
        .await;
    assert_eq!(customer["customer"]["smsNumber"], "555-000-0000");
    let messages = app.messages(pb::CUSTOMER_AGGREGATE_CHANNEL, 2).await;
    assert_eq!(messages[1].name, "customersapi.CustomerSmsChanged");
    let event = pb::CustomerSmsChanged::decode(messages[1].payload.as_slice()).unwrap();
    assert_eq!(
        event,
        pb::CustomerSmsChanged {
            id,
            sms_number: "555-000-0000".into()
        }
    );
}

async fn unknown_customers_are_not_found(backend: Backend) {
    let app = app(backend).await;
    let missing = error(5, "customer with that ID does not exist");
    assert_eq!(
        app.json(Method::GET, "/api/customers/nope", Value::Null)
            .await,
        (404, missing.clone())
    );
    assert_eq!(
        app.json(Method::PUT, "/api/customers/nope/enable", json!({}))
            .await,
        (404, missing.clone())
    );
    assert_eq!(
        app.json(Method::PUT, "/api/customers/nope/disable", json!({}))
            .await,
        (404, missing.clone())
    );
    assert_eq!(
        app.json(
            Method::PUT,
            "/api/customers/nope/change-sms",
            json!({"smsNumber": "1"})
        )
        .await,
        (404, missing)
    );
}

fn authorize(customer: &str, saga: &str) -> Message {
    Message::new(
        pb::COMMAND_CHANNEL,
        pb::AUTHORIZE_CUSTOMER_COMMAND,
        &pb::AuthorizeCustomer {
            id: customer.into(),
        },
    )
    .with_metadata(
        "COMMAND_REPLY_CHANNEL",
        proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
    )
    .with_metadata("COMMAND_SAGA_ID", saga)
    .with_metadata("COMMAND_SAGA_NAME", "cosec.CreateOrder")
}

async fn authorize_customer_commands_are_answered(backend: Backend) {
    let app = app(backend).await;
    let enabled = register(&app).await;
    let disabled = register(&app).await;
    app.json(
        Method::PUT,
        &format!("/api/customers/{disabled}/disable"),
        json!({}),
    )
    .await;
    for (customer, saga) in [
        (enabled.as_str(), "saga-1"),
        (disabled.as_str(), "saga-2"),
        ("nobody", "saga-3"),
    ] {
        let command = authorize(customer, saga);
        app.publish(&command).await;
    }
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 3)
        .await;
    let mut outcomes: Vec<(&str, &str, &str)> = replies
        .iter()
        .map(|r| {
            (
                r.metadata["REPLY_SAGA_ID"].as_str(),
                r.name.as_str(),
                r.metadata["REPLY_OUTCOME"].as_str(),
            )
        })
        .collect();
    // Different sagas' commands are handled concurrently: their replies come in any order.
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        [
            ("saga-1", "am.Success", "SUCCESS"),
            ("saga-2", "am.Failure", "FAILURE"),
            ("saga-3", "am.Failure", "FAILURE")
        ]
    );
    assert!(
        replies
            .iter()
            .all(|r| r.metadata["REPLY_SAGA_NAME"] == "cosec.CreateOrder")
    );
}

async fn a_command_delivered_twice_is_answered_once(backend: Backend) {
    let app = app(backend).await;
    let customer = register(&app).await;
    let command = authorize(&customer, "saga-1");
    app.publish_as(&command, "first-delivery").await;
    app.publish_as(&command, "second-delivery").await;
    let later = authorize(&customer, "saga-2");
    app.publish(&later).await;
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 2)
        .await;
    let mut sagas: Vec<&str> = replies
        .iter()
        .map(|r| r.metadata["REPLY_SAGA_ID"].as_str())
        .collect();
    sagas.sort_unstable();
    assert_eq!(
        sagas,
        ["saga-1", "saga-2"],
        "one reply per command, whatever the deliveries"
    );
    let quiet = app
        .messages_within(
            proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
            3,
            Duration::from_millis(500),
        )
        .await;
    assert_eq!(quiet.len(), 2);
}

async fn grpc_authorize_refuses_a_disabled_customer(backend: Backend) {
    let app = app(backend).await;
    let id = register(&app).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::customers_service_client::CustomersServiceClient::new(channel);
    client
        .authorize_customer(pb::AuthorizeCustomerRequest { id: id.clone() })
        .await
        .unwrap();
    client
        .disable_customer(pb::DisableCustomerRequest { id: id.clone() })
        .await
        .unwrap();
    let refused = client
        .authorize_customer(pb::AuthorizeCustomerRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (tonic::Code::Unauthenticated, "customer is not authorized")
    );
    let found = client
        .get_customer(pb::GetCustomerRequest { id })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert!(!found.enabled);
}

async fn malformed_json_is_a_400_with_the_error_body(backend: Backend) {
    let app = app(backend).await;
    let response = app
        .send(Method::POST, "/api/customers", r#"{"name": ["Ada"]}"#)
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (&body["code"], &body["details"]),
        (&json!(3), &json!([])),
        "{body}"
    );
}
