//! The depot module through the running app (with stores), on each backend. The saga is not
//! mounted here: its commands are published as it would publish them.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use messaging::Message;
use prost::Message as _;
use proto::depot as pb;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, error_body as error, spawn_app};

db::backend_tests!(
    the_sagas_list_is_built_initiated_picked_and_completed,
    a_list_for_unknown_products_fails_the_step,
    cancelling_is_announced_once_harmless_twice_and_refused_after_completion,
    bots_cannot_skip_steps,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&["stores", "depot"], backend).await
}

async fn store_and_product(app: &TestApp) -> (String, String) {
    let store = app
        .create(
            "/api/stores",
            json!({"name": "Store ABC", "location": "The mall"}),
        )
        .await;
    let product = json!({"name": "Product ABC", "description": "", "sku": "abc", "price": 9.99});
    let product = app
        .create(&format!("/api/stores/{store}/products"), product)
        .await;
    (store, product)
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

fn create(order: &str, items: &[(&str, &str, i32)]) -> Message {
    let items = items
        .iter()
        .map(
            |(store, product, quantity)| pb::create_shopping_list::Item {
                product_id: (*product).into(),
                store_id: (*store).into(),
                quantity: *quantity,
            },
        )
        .collect();
    command(
        pb::CREATE_SHOPPING_LIST_COMMAND,
        &pb::CreateShoppingList {
            order_id: order.into(),
            items,
        },
        "saga-create",
    )
}

async fn list(app: &TestApp, id: &str) -> Value {
    app.json(
        Method::GET,
        &format!("/api/depot/shopping/{id}"),
        Value::Null,
    )
    .await
    .1["shoppingList"]
        .clone()
}

async fn the_sagas_list_is_built_initiated_picked_and_completed(backend: Backend) {
    let app = app(backend).await;
    let (store, product) = store_and_product(&app).await;
    app.publish(&create(
        "order-1",
        &[(&store, &product, 2), (&store, &product, 3)],
    ))
    .await;
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 1)
        .await;
    assert_eq!(
        (
            replies[0].name.as_str(),
            replies[0].metadata["REPLY_OUTCOME"].as_str()
        ),
        ("depotapi.CreatedShoppingListReply", "SUCCESS")
    );
    let list_id = pb::CreatedShoppingList::decode(replies[0].payload.as_slice())
        .unwrap()
        .id;
    let created = list(&app, &list_id).await;
    assert_eq!(
        (&created["orderId"], &created["status"]),
        (&json!("order-1"), &json!("pending"))
    );
    let stop = &created["stops"][&store];
    assert_eq!(
        (&stop["storeName"], &stop["storeLocation"]),
        (&json!("Store ABC"), &json!("The mall"))
    );
    assert_eq!(
        stop["items"][&product],
        json!({"name": "Product ABC", "quantity": 5}),
        "repeated products are summed"
    );

    app.publish(&command(
        pb::INITIATE_SHOPPING_COMMAND,
        &pb::InitiateShopping {
            id: list_id.clone(),
        },
        "saga-initiate",
    ))
    .await;
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 2)
        .await;
    assert_eq!(replies[1].metadata["REPLY_OUTCOME"], "SUCCESS");
    let (_, queue) = app
        .json(
            Method::GET,
            "/api/depot/shopping?status=available",
            Value::Null,
        )
        .await;
    assert_eq!(queue["shoppingLists"][0]["id"], json!(list_id));

    let assign = format!("/api/depot/shopping/{list_id}/assign");
    assert_eq!(
        app.json(Method::PUT, &assign, json!({"botId": "bot-1"}))
            .await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(
            Method::PUT,
            &format!("/api/depot/shopping/{list_id}/complete"),
            json!({})
        )
        .await,
        (200, json!({}))
    );
    let done = list(&app, &list_id).await;
    assert_eq!(
        (&done["status"], &done["assignedBotId"]),
        (&json!("completed"), &json!("bot-1"))
    );
    let events = app.messages(pb::SHOPPING_LIST_AGGREGATE_CHANNEL, 1).await;
    assert_eq!(events[0].name, "depotapi.ShoppingListCompleted");
    let event = pb::ShoppingListCompleted::decode(events[0].payload.as_slice()).unwrap();
    assert_eq!(
        event,
        pb::ShoppingListCompleted {
            id: list_id,
            order_id: "order-1".into()
        }
    );
}

async fn a_list_for_unknown_products_fails_the_step(backend: Backend) {
    let app = app(backend).await;
    let (store, _) = store_and_product(&app).await;
    app.publish(&create("order-1", &[(&store, "nope", 1)]))
        .await;
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 1)
        .await;
    assert_eq!(replies[0].metadata["REPLY_OUTCOME"], "FAILURE");
    let (_, pending) = app
        .json(
            Method::GET,
            "/api/depot/shopping?status=pending",
            Value::Null,
        )
        .await;
    assert_eq!(
        pending["shoppingLists"],
        json!([]),
        "no list was left behind"
    );
}

async fn cancelling_is_announced_once_harmless_twice_and_refused_after_completion(
    backend: Backend,
) {
    let app = app(backend).await;
    let (store, product) = store_and_product(&app).await;
    let items = json!([{"productId": product, "storeId": store, "quantity": 1}]);
    let first = app
        .create(
            "/api/depot/shopping",
            json!({"orderId": "o1", "items": items}),
        )
        .await;
    for saga in ["cancel-1", "cancel-2"] {
        app.publish(&command(
            pb::CANCEL_SHOPPING_LIST_COMMAND,
            &pb::CancelShoppingList { id: first.clone() },
            saga,
        ))
        .await;
    }
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 2)
        .await;
    assert!(
        replies
            .iter()
            .all(|r| r.metadata["REPLY_OUTCOME"] == "SUCCESS")
    );
    assert_eq!(list(&app, &first).await["status"], "canceled");

    let second = app
        .create(
            "/api/depot/shopping",
            json!({"orderId": "o2", "items": items}),
        )
        .await;
    app.publish(&command(
        pb::INITIATE_SHOPPING_COMMAND,
        &pb::InitiateShopping { id: second.clone() },
        "initiate",
    ))
    .await;
    app.messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 3)
        .await;
    app.json(
        Method::PUT,
        &format!("/api/depot/shopping/{second}/assign"),
        json!({"botId": "bot-1"}),
    )
    .await;
    app.json(
        Method::PUT,
        &format!("/api/depot/shopping/{second}/complete"),
        json!({}),
    )
    .await;
    let cancel = app
        .json(
            Method::POST,
            &format!("/api/depot/shopping/{second}"),
            json!({}),
        )
        .await;
    assert_eq!(
        cancel,
        (400, error(9, "the shopping list cannot be canceled"))
    );
    app.publish(&command(
        pb::CANCEL_SHOPPING_LIST_COMMAND,
        &pb::CancelShoppingList { id: second },
        "cancel-late",
    ))
    .await;
    let replies = app
        .messages(proto::cosec::CREATE_ORDER_REPLY_CHANNEL, 4)
        .await;
    assert_eq!(replies[3].metadata["REPLY_OUTCOME"], "FAILURE");
    // The first list's cancel is announced once (the second cancel changed nothing), the
    // second list's completion once; the refused cancel announces nothing.
    let announced = app
        .messages_within(
            pb::SHOPPING_LIST_AGGREGATE_CHANNEL,
            3,
            std::time::Duration::from_secs(2),
        )
        .await;
    let names: Vec<&str> = announced.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            pb::SHOPPING_LIST_CANCELED_EVENT,
            pb::SHOPPING_LIST_COMPLETED_EVENT
        ]
    );
    let canceled = pb::ShoppingListCanceled::decode(announced[0].payload.as_slice()).unwrap();
    assert_eq!(
        (canceled.id.as_str(), canceled.order_id.as_str()),
        (first.as_str(), "o1")
    );
}

async fn bots_cannot_skip_steps(backend: Backend) {
    let app = app(backend).await;
    let (store, product) = store_and_product(&app).await;
    let items = json!([{"productId": product, "storeId": store, "quantity": 1}]);
    let list_id = app
        .create(
            "/api/depot/shopping",
            json!({"orderId": "o1", "items": items}),
        )
        .await;
    let path = |action: &str| format!("/api/depot/shopping/{list_id}/{action}");
    assert_eq!(
        app.json(Method::PUT, &path("assign"), json!({"botId": "bot-1"}))
            .await,
        (400, error(9, "the shopping list cannot be assigned"))
    );
    assert_eq!(
        app.json(Method::PUT, &path("complete"), json!({})).await,
        (400, error(9, "the shopping list cannot be completed"))
    );
    assert_eq!(
        app.json(Method::PUT, &path("assign"), json!({})).await,
        (400, error(3, "the bot id cannot be blank"))
    );
    let missing = error(5, "shopping list with that ID does not exist");
    assert_eq!(
        app.json(
            Method::PUT,
            "/api/depot/shopping/nope/assign",
            json!({"botId": "b"})
        )
        .await,
        (404, missing.clone())
    );
    assert_eq!(
        app.json(Method::GET, "/api/depot/shopping/nope", Value::Null)
            .await,
        (404, missing)
    );
    assert_eq!(
        app.json(Method::GET, "/api/depot/shopping?status=lost", Value::Null)
            .await
            .0,
        400
    );
    let unknown = app.json(Method::POST, "/api/depot/shopping", json!({"orderId": "o", "items": [{"productId": "nope", "storeId": store, "quantity": 1}]})).await;
    assert_eq!(
        unknown,
        (
            404,
            error(5, "building shopping list: product fallback failed")
        )
    );
}
