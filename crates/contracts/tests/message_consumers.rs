//! The consumer side of the message pacts: each consuming module records the events and
//! replies it handles, then the examples are published to that module running alone and what
//! it did with them is checked. The pacts written must equal the committed `pacts/*.json`.

use std::collections::HashMap;

use contracts::{pacts, wire};
use db::Row as _;
use pact_consumer::{patterns::JsonPattern, prelude::*};
use pact_models::v4::async_message::AsynchronousMessage;
use proto::{am, baskets, cosec, customers, depot, ordering, payments, stores};
use serde_json::{Value, json};
use testkit::{Backend, TestApp, spawn_app};

/// Adds a message interaction: `description`, produced when `state` holds, named `name` on
/// `subject`, shaped like `body`; `outcome` for replies.
fn expect(
    pact: &mut PactBuilder,
    description: &str,
    state: &str,
    (name, subject): (&str, &str),
    outcome: Option<&str>,
    body: JsonPattern,
) {
    pact.message_interaction(description, |mut i| {
        i.given(state);
        i.metadata("name", name);
        i.metadata("subject", subject);
        if let Some(outcome) = outcome {
            i.metadata(am::REPLY_OUTCOME_HDR, outcome);
        }
        i.json_body(body);
        i
    });
}

/// The examples of a pact by description, and the pact file written when `pact` is done.
fn examples(pact: &PactBuilder) -> HashMap<String, AsynchronousMessage> {
    pact.messages()
        .map(|m| (m.description.clone(), m))
        .collect()
}

/// The example `description` as the message a producer would publish, with `metadata` added.
fn message(
    examples: &HashMap<String, AsynchronousMessage>,
    description: &str,
    metadata: &[(&str, &str)],
) -> messaging::Message {
    let example = &examples[description];
    let field = |key: &str| {
        example.contents.metadata[key]
            .as_str()
            .unwrap_or_else(|| panic!("{description}: metadata {key}"))
            .to_owned()
    };
    let (name, subject) = (field("name"), field("subject"));
    let body: Value = serde_json::from_slice(
        &example
            .contents
            .contents
            .value()
            .unwrap_or_else(|| panic!("{description} has a body")),
    )
    .expect("a JSON body");
    // Fails when the example names a field the payload type does not have.
    let payload = wire::from_json(&name, &body).unwrap_or_else(|e| panic!("{description}: {e:#}"));
    let mut message = messaging::Message::from_bytes(subject, name, payload);
    if let Some(outcome) = example.contents.metadata.get(am::REPLY_OUTCOME_HDR) {
        message =
            message.with_metadata(am::REPLY_OUTCOME_HDR, outcome.as_str().unwrap_or_default());
    }
    for (key, value) in metadata {
        message = message.with_metadata(*key, *value);
    }
    message
}

/// Publishes `message` and waits until the module `schema` has handled it (its inbox has it).
async fn deliver(app: &TestApp, schema: &str, message: messaging::Message) {
    app.publish(&message).await;
    let query = &format!("SELECT COUNT(*) FROM {schema}.inbox WHERE id = $1");
    let message = &message;
    testkit::until(|| async move {
        let row = sqlx::query(db::AssertSqlSafe(query.clone()))
            .bind(message.id())
            .fetch_one(app.db.pool())
            .await
            .expect("the inbox can be read");
        if row.get::<i64, _>(0) == 1 {
            Ok(())
        } else {
            Err(format!(
                "{schema} did not handle {} (dead-lettered or still retrying; RUST_LOG=warn tells)",
                message.name()
            ))
        }
    })
    .await;
}

/// A single text or number column of the first row of `sql`, as JSON.
async fn one(app: &TestApp, sql: &str) -> Value {
    let row = sqlx::query(db::AssertSqlSafe(sql.to_owned()))
        .fetch_optional(app.db.pool())
        .await
        .expect("the query runs");
    let Some(row) = row else { return Value::Null };
    row.try_get::<String, _>(0)
        .map(Value::from)
        .or_else(|_| row.try_get::<f64, _>(0).map(Value::from))
        .expect("a text or number column")
}

/// The stores events `consumer` handles, with the examples its tests feed it.
fn stores_events(consumer: &str, handles: &[&str]) -> PactBuilder {
    let mut pact = PactBuilder::new_v4(consumer, "stores");
    let store = (stores::STORE_CREATED_EVENT, stores::STORE_AGGREGATE_CHANNEL);
    let all = [
        (
            "a store was created",
            store,
            json_pattern!({"id": like!("store-1"), "name": like!("Waldorf Books"), "location": like!("Level 1")}),
        ),
        (
            "a store was rebranded",
            (
                stores::STORE_REBRANDED_EVENT,
                stores::STORE_AGGREGATE_CHANNEL,
            ),
            json_pattern!({"id": like!("store-1"), "name": like!("Statler Books")}),
        ),
        (
            "a product was added",
            (
                stores::PRODUCT_ADDED_EVENT,
                stores::PRODUCT_AGGREGATE_CHANNEL,
            ),
            json_pattern!({"id": like!("product-1"), "storeId": like!("store-1"), "name": like!("Gherkin Book"),
                "description": like!("Cucumbers, a lot"), "sku": like!("BOOK-1"), "price": like!(12.5)}),
        ),
        (
            "a product was rebranded",
            (
                stores::PRODUCT_REBRANDED_EVENT,
                stores::PRODUCT_AGGREGATE_CHANNEL,
            ),
            json_pattern!({"id": like!("product-1"), "name": like!("Pickle Book"), "description": like!("Brined")}),
        ),
        (
            "a product's price was increased",
            (
                stores::PRODUCT_PRICE_INCREASED_EVENT,
                stores::PRODUCT_AGGREGATE_CHANNEL,
            ),
            json_pattern!({"id": like!("product-1"), "delta": like!(2.5)}),
        ),
        (
            "a product's price was decreased",
            (
                stores::PRODUCT_PRICE_DECREASED_EVENT,
                stores::PRODUCT_AGGREGATE_CHANNEL,
            ),
            // A decrease carries a negative delta: new price = cached price + delta.
            json_pattern!({"id": like!("product-1"), "delta": like!(-1.0)}),
        ),
        (
            "a product was removed",
            (
                stores::PRODUCT_REMOVED_EVENT,
                stores::PRODUCT_AGGREGATE_CHANNEL,
            ),
            json_pattern!({"id": like!("product-1")}),
        ),
    ];
    for (description, message, body) in all {
        if handles.contains(&message.0) {
            expect(&mut pact, description, description, message, None, body);
        }
    }
    pact
}

/// Feeds `consumer` (a module running alone) the stores events it handles, in order, and
/// after each one checks `sql` (one value from its caches) against the expected value.
async fn caches_follow_the_stores_events(consumer: &str, checks: &[(&str, &str, String, Value)]) {
    pacts::prepare();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let handles: Vec<&str> = checks.iter().map(|(name, ..)| *name).collect();
    let mut pact = stores_events(consumer, &handles);
    pact.with_output_dir(scratch.path());
    let examples = examples(&pact);
    let app = spawn_app(&[consumer], Backend::Sqlite).await;
    for (_, description, sql, expected) in checks {
        deliver(&app, consumer, message(&examples, description, &[])).await;
        assert_eq!(&one(&app, sql).await, expected, "after {description}");
    }
    pacts::check(scratch.path(), &format!("{consumer}-stores.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baskets_keeps_its_caches_from_the_stores_events() {
    let store = || "SELECT name FROM baskets.stores_cache WHERE id = 'store-1'".to_owned();
    let product = |column: &str| {
        format!("SELECT {column} FROM baskets.products_cache WHERE id = 'product-1'")
    };
    caches_follow_the_stores_events(
        "baskets",
        &[
            (
                stores::STORE_CREATED_EVENT,
                "a store was created",
                store(),
                json!("Waldorf Books"),
            ),
            (
                stores::STORE_REBRANDED_EVENT,
                "a store was rebranded",
                store(),
                json!("Statler Books"),
            ),
            (
                stores::PRODUCT_ADDED_EVENT,
                "a product was added",
                product("price"),
                json!(12.5),
            ),
            (
                stores::PRODUCT_REBRANDED_EVENT,
                "a product was rebranded",
                product("name"),
                json!("Pickle Book"),
            ),
            (
                stores::PRODUCT_PRICE_INCREASED_EVENT,
                "a product's price was increased",
                product("price"),
                json!(15.0),
            ),
            (
                stores::PRODUCT_PRICE_DECREASED_EVENT,
                "a product's price was decreased",
                product("price"),
                json!(14.0),
            ),
            (
                stores::PRODUCT_REMOVED_EVENT,
                "a product was removed",
                product("name"),
                Value::Null,
            ),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depot_keeps_its_caches_from_the_stores_events() {
    let store =
        |column: &str| format!("SELECT {column} FROM depot.stores_cache WHERE id = 'store-1'");
    let product = || "SELECT name FROM depot.products_cache WHERE id = 'product-1'".to_owned();
    caches_follow_the_stores_events(
        "depot",
        &[
            (
                stores::STORE_CREATED_EVENT,
                "a store was created",
                store("location"),
                json!("Level 1"),
            ),
            (
                stores::STORE_REBRANDED_EVENT,
                "a store was rebranded",
                store("name"),
                json!("Statler Books"),
            ),
            (
                stores::PRODUCT_ADDED_EVENT,
                "a product was added",
                product(),
                json!("Gherkin Book"),
            ),
            (
                stores::PRODUCT_REBRANDED_EVENT,
                "a product was rebranded",
                product(),
                json!("Pickle Book"),
            ),
            (
                stores::PRODUCT_REMOVED_EVENT,
                "a product was removed",
                product(),
                Value::Null,
            ),
        ],
    )
    .await;
}

/// Waits until ordering shows `order` with `status`; the order.
async fn order_becomes(app: &TestApp, order: &str, status: &str) -> Value {
    let path = format!("/api/ordering/{order}");
    app.eventually(&path, "/order/status", status).await["order"].take()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_follows_checkouts_lists_and_invoices() {
    pacts::prepare();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut from_baskets = PactBuilder::new_v4("ordering", "baskets");
    let item = json_pattern!({"storeId": like!("store-1"), "productId": like!("product-1"), "storeName": like!("Waldorf Books"),
        "productName": like!("Gherkin Book"), "price": like!(12.5), "quantity": like!(2)});
    expect(
        &mut from_baskets,
        "a basket was checked out",
        "a basket was checked out",
        (
            baskets::BASKET_CHECKED_OUT_EVENT,
            baskets::BASKET_AGGREGATE_CHANNEL,
        ),
        None,
        json_pattern!({"id": like!("basket-1"), "customerId": like!("customer-1"), "paymentId": like!("payment-1"),
            "items": each_like!(item)}),
    );
    let mut from_depot = PactBuilder::new_v4("ordering", "depot");
    expect(
        &mut from_depot,
        "a shopping list was completed",
        "a shopping list was completed",
        (
            depot::SHOPPING_LIST_COMPLETED_EVENT,
            depot::SHOPPING_LIST_AGGREGATE_CHANNEL,
        ),
        None,
        json_pattern!({"id": like!("list-1"), "orderId": like!("basket-1")}),
    );
    let mut from_payments = PactBuilder::new_v4("ordering", "payments");
    expect(
        &mut from_payments,
        "an invoice was paid",
        "an invoice was paid",
        (
            payments::INVOICE_PAID_EVENT,
            payments::INVOICE_AGGREGATE_CHANNEL,
        ),
        None,
        json_pattern!({"id": like!("invoice-1"), "orderId": like!("basket-1")}),
    );
    let mut examples_of = HashMap::new();
    for pact in [&mut from_baskets, &mut from_depot, &mut from_payments] {
        pact.with_output_dir(scratch.path());
        examples_of.extend(examples(pact));
    }

    let app = spawn_app(&["ordering"], Backend::Sqlite).await;
    deliver(
        &app,
        "ordering",
        message(&examples_of, "a basket was checked out", &[]),
    )
    .await;
    let order = order_becomes(&app, "basket-1", "pending").await;
    assert_eq!(
        (
            &order["customerId"],
            &order["paymentId"],
            &order["items"][0]["quantity"]
        ),
        (&json!("customer-1"), &json!("payment-1"), &json!(2))
    );
    // The saga's approval, which comes between checkout and picking (cosec's own pact).
    let approve = ordering::ApproveOrder {
        id: "basket-1".to_owned(),
        shopping_id: "list-1".to_owned(),
    };
    let command = messaging::Message::new(
        ordering::COMMAND_CHANNEL,
        ordering::APPROVE_ORDER_COMMAND,
        &approve,
    )
    .with_metadata(
        am::COMMAND_REPLY_CHANNEL_HDR,
        cosec::CREATE_ORDER_REPLY_CHANNEL,
    );
    deliver(&app, "ordering", command).await;
    order_becomes(&app, "basket-1", "approved").await;
    deliver(
        &app,
        "ordering",
        message(&examples_of, "a shopping list was completed", &[]),
    )
    .await;
    order_becomes(&app, "basket-1", "ready").await;
    deliver(
        &app,
        "ordering",
        message(&examples_of, "an invoice was paid", &[]),
    )
    .await;
    let order = order_becomes(&app, "basket-1", "completed").await;
    assert_eq!(order["invoiceId"], json!("invoice-1"));

    pacts::check(scratch.path(), "ordering-baskets.json");
    pacts::check(scratch.path(), "ordering-depot.json");
    pacts::check(scratch.path(), "ordering-payments.json");
}

/// The pacts of the create-order saga with the modules it hears from.
struct SagaPacts {
    ordering: PactBuilder,
    customers: PactBuilder,
    depot: PactBuilder,
    payments: PactBuilder,
}

fn saga_pacts() -> SagaPacts {
    let replies = cosec::CREATE_ORDER_REPLY_CHANNEL;
    let success = (am::SUCCESS_REPLY, replies);
    let empty = || json_pattern!({});
    let mut ordering = PactBuilder::new_v4("cosec", "ordering");
    let item = json_pattern!({"productId": like!("product-1"), "storeId": like!("store-1"), "price": like!(12.5), "quantity": like!(2)});
    expect(
        &mut ordering,
        "an order was created",
        "an order was created",
        (
            ordering::ORDER_CREATED_EVENT,
            ordering::ORDER_AGGREGATE_CHANNEL,
        ),
        None,
        json_pattern!({"id": like!("order-1"), "customerId": like!("customer-1"), "paymentId": like!("payment-1"),
            "shoppingId": like!(""), "items": each_like!(item)}),
    );
    expect(
        &mut ordering,
        "an order was approved",
        "an order was approved",
        success,
        Some(am::OUTCOME_SUCCESS),
        empty(),
    );
    expect(
        &mut ordering,
        "an order was rejected",
        "an order was rejected",
        success,
        Some(am::OUTCOME_SUCCESS),
        empty(),
    );
    let mut customers = PactBuilder::new_v4("cosec", "customers");
    expect(
        &mut customers,
        "a customer was authorized",
        "a customer was authorized",
        success,
        Some(am::OUTCOME_SUCCESS),
        empty(),
    );
    expect(
        &mut customers,
        "a customer was refused",
        "a disabled customer was refused",
        (am::FAILURE_REPLY, replies),
        Some(am::OUTCOME_FAILURE),
        empty(),
    );
    let mut depot = PactBuilder::new_v4("cosec", "depot");
    expect(
        &mut depot,
        "a shopping list was created",
        "a shopping list was created",
        (depot::CREATED_SHOPPING_LIST_REPLY, replies),
        Some(am::OUTCOME_SUCCESS),
        json_pattern!({"id": like!("list-1")}),
    );
    expect(
        &mut depot,
        "shopping was initiated",
        "shopping was initiated",
        success,
        Some(am::OUTCOME_SUCCESS),
        empty(),
    );
    let mut payments = PactBuilder::new_v4("cosec", "payments");
    expect(
        &mut payments,
        "a payment was confirmed",
        "a payment was confirmed",
        success,
        Some(am::OUTCOME_SUCCESS),
        empty(),
    );
    SagaPacts {
        ordering,
        customers,
        depot,
        payments,
    }
}

/// Answers the next command the saga sent on `channel` with the example `reply`, copying the
/// command's `COMMAND_*` metadata as `REPLY_*` the way every command handler does.
async fn answer(
    app: &TestApp,
    examples: &HashMap<String, AsynchronousMessage>,
    channel: &str,
    seen: &mut HashMap<String, usize>,
    reply: &str,
) {
    let count = seen.entry(channel.to_owned()).or_default();
    *count += 1;
    let commands = app.messages(channel, *count).await;
    let command = commands
        .last()
        .filter(|_| commands.len() == *count)
        .unwrap_or_else(|| panic!("the saga sent command {count} on {channel}"));
    let echoed: Vec<(String, String)> = command
        .metadata
        .iter()
        .filter(|(key, _)| {
            key.starts_with(am::COMMAND_HDR_PREFIX) && key.as_str() != am::COMMAND_NAME_HDR
        })
        .map(|(key, value)| {
            (
                key.replacen(am::COMMAND_HDR_PREFIX, am::REPLY_HDR_PREFIX, 1),
                value.clone(),
            )
        })
        .collect();
    let metadata: Vec<(&str, &str)> = echoed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    deliver(app, "cosec", message(examples, reply, &metadata)).await;
}

async fn saga_becomes(app: &TestApp, order: &str, status: &str) -> Value {
    let path = format!("/api/cosec/sagas/{order}");
    app.eventually(&path, "/saga/status", status).await["saga"].take()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_create_order_saga_follows_orders_and_replies() {
    pacts::prepare();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut pacts_of = saga_pacts();
    let mut examples = HashMap::new();
    for pact in [
        &mut pacts_of.ordering,
        &mut pacts_of.customers,
        &mut pacts_of.depot,
        &mut pacts_of.payments,
    ] {
        pact.with_output_dir(scratch.path());
        examples.extend(self::examples(pact));
    }
    let app = spawn_app(&["cosec"], Backend::Sqlite).await;
    let mut seen = HashMap::new();

    // Every step succeeds: the order is approved with the list the depot made.
    deliver(
        &app,
        "cosec",
        message(&examples, "an order was created", &[]),
    )
    .await;
    answer(
        &app,
        &examples,
        customers::COMMAND_CHANNEL,
        &mut seen,
        "a customer was authorized",
    )
    .await;
    answer(
        &app,
        &examples,
        depot::COMMAND_CHANNEL,
        &mut seen,
        "a shopping list was created",
    )
    .await;
    answer(
        &app,
        &examples,
        payments::COMMAND_CHANNEL,
        &mut seen,
        "a payment was confirmed",
    )
    .await;
    answer(
        &app,
        &examples,
        depot::COMMAND_CHANNEL,
        &mut seen,
        "shopping was initiated",
    )
    .await;
    answer(
        &app,
        &examples,
        ordering::COMMAND_CHANNEL,
        &mut seen,
        "an order was approved",
    )
    .await;
    let saga = saga_becomes(&app, "order-1", "completed").await;
    assert_eq!(saga["shoppingId"], json!("list-1"));

    // A refused customer: the order is rejected and the saga compensated.
    let mut created = message(&examples, "an order was created", &[]);
    let mut order: ordering::OrderCreated =
        prost::Message::decode(created.envelope.payload.as_slice()).expect("an OrderCreated");
    order.id = "order-2".to_owned();
    created.envelope.payload = prost::Message::encode_to_vec(&order);
    deliver(&app, "cosec", created).await;
    answer(
        &app,
        &examples,
        customers::COMMAND_CHANNEL,
        &mut seen,
        "a customer was refused",
    )
    .await;
    answer(
        &app,
        &examples,
        ordering::COMMAND_CHANNEL,
        &mut seen,
        "an order was rejected",
    )
    .await;
    saga_becomes(&app, "order-2", "compensated").await;

    for file in [
        "cosec-ordering.json",
        "cosec-customers.json",
        "cosec-depot.json",
        "cosec-payments.json",
    ] {
        pacts::check(scratch.path(), file);
    }
}
