//! The provider side of the message pacts: the whole mall runs, and for each interaction the
//! real producer is made to publish the message (through its REST API or the saga), which is
//! read back from the broker and handed to the verifier as JSON with its metadata — so what is
//! verified is what goes on the wire, built by the producer's own code.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{Json, extract::State, http::header, response::IntoResponse, routing::post};
use base64::Engine as _;
use contracts::{pacts, wire};
use db::Backend;
use messaging::Envelope;
use pact_models::provider_states::ProviderState;
use pact_verifier::callback_executors::ProviderStateExecutor;
use proto::{am, baskets, cosec, customers, depot, ordering, payments, stores};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Mall, TestApp, spawn_app};

db::backend_tests!(
    stores_events_keep_their_pacts,
    baskets_events_keep_their_pacts,
    depot_messages_keep_their_pacts,
    payments_messages_keep_their_pacts,
    ordering_messages_keep_their_pacts,
    customers_replies_keep_their_pacts,
);

async fn stores_events_keep_their_pacts(backend: Backend) {
    verify(
        backend,
        "stores",
        &["baskets-stores.json", "depot-stores.json"],
    )
    .await;
}

async fn baskets_events_keep_their_pacts(backend: Backend) {
    verify(backend, "baskets", &["ordering-baskets.json"]).await;
}

async fn depot_messages_keep_their_pacts(backend: Backend) {
    verify(
        backend,
        "depot",
        &["ordering-depot.json", "cosec-depot.json"],
    )
    .await;
}

async fn payments_messages_keep_their_pacts(backend: Backend) {
    verify(
        backend,
        "payments",
        &["ordering-payments.json", "cosec-payments.json"],
    )
    .await;
}

async fn ordering_messages_keep_their_pacts(backend: Backend) {
    verify(backend, "ordering", &["cosec-ordering.json"]).await;
}

async fn customers_replies_keep_their_pacts(backend: Backend) {
    verify(backend, "customers", &["cosec-customers.json"]).await;
}

async fn verify(backend: Backend, provider: &str, files: &[&str]) {
    let app = Arc::new(spawn_app(&["all"], backend).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    let endpoint = axum::Router::new()
        .route("/", post(produce))
        .with_state(Arc::clone(&app));
    let server = tokio::spawn(async move { axum::serve(listener, endpoint).await });
    let info = pacts::provider(provider, None, Some(port));
    pacts::verify(info, files, Arc::new(NoStates)).await;
    server.abort();
}

/// States are set up by the message endpoint, which knows which message to wait for.
#[derive(Debug)]
struct NoStates;

#[async_trait]
impl ProviderStateExecutor for NoStates {
    async fn call(
        self: Arc<Self>,
        _interaction: Option<String>,
        _state: &ProviderState,
        _setup: bool,
        _client: Option<&reqwest::Client>,
    ) -> anyhow::Result<HashMap<String, Value>> {
        Ok(HashMap::new())
    }

    fn teardown(&self) -> bool {
        false
    }
}

/// What Pact's verifier posts: the interaction and the state its message is produced in.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wanted {
    description: String,
    #[serde(default)]
    provider_states: Vec<ProviderStateJson>,
}

#[derive(serde::Deserialize)]
struct ProviderStateJson {
    name: String,
}

/// The message endpoint: brings the state about, reads the message it made off the broker and
/// answers it as Pact expects (JSON body, metadata in `pact-message-metadata`).
async fn produce(State(app): State<Arc<TestApp>>, Json(wanted): Json<Wanted>) -> impl IntoResponse {
    let state = wanted
        .provider_states
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let (subject, message) = bring_about(&app, &state)
        .await
        .unwrap_or_else(|| panic!("no producer for state {state:?} ({})", wanted.description));
    let mut metadata: serde_json::Map<String, Value> = message
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    metadata.insert("name".to_owned(), json!(message.name));
    metadata.insert("subject".to_owned(), json!(subject));
    let body = wire::to_json(&message.name, &message.payload).expect("a catalogued payload");
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(Value::Object(metadata).to_string());
    (
        [
            (header::CONTENT_TYPE.as_str(), "application/json".to_owned()),
            ("pact-message-metadata", encoded),
        ],
        Json(body),
    )
}

/// Makes the producers publish the message of `state`; its subject and envelope.
async fn bring_about(app: &TestApp, state: &str) -> Option<(&'static str, Envelope)> {
    use stores::{PRODUCT_AGGREGATE_CHANNEL as PRODUCTS, STORE_AGGREGATE_CHANNEL as STORES};
    let product_event = |name| (PRODUCTS, name);
    let found = match state {
        "a store was created" => {
            let store = store(app).await;
            event(app, (STORES, stores::STORE_CREATED_EVENT), &store).await
        }
        "a store was rebranded" => {
            let store = store(app).await;
            ok(
                app,
                Method::PUT,
                &format!("/api/stores/{store}/rebrand"),
                json!({"name": "Statler Books"}),
            )
            .await;
            event(app, (STORES, stores::STORE_REBRANDED_EVENT), &store).await
        }
        "a product was added" => {
            let product = product(app).await;
            event(app, product_event(stores::PRODUCT_ADDED_EVENT), &product).await
        }
        "a product was rebranded" => {
            let product = product(app).await;
            let path = format!("/api/stores/products/{product}/rebrand");
            ok(
                app,
                Method::PUT,
                &path,
                json!({"name": "Pickle Book", "description": "Brined"}),
            )
            .await;
            event(
                app,
                product_event(stores::PRODUCT_REBRANDED_EVENT),
                &product,
            )
            .await
        }
        "a product's price was increased" | "a product's price was decreased" => {
            let product = product(app).await;
            let (route, price, name) = if state.contains("increased") {
                ("increasePrice", 15.0, stores::PRODUCT_PRICE_INCREASED_EVENT)
            } else {
                ("decreasePrice", 11.5, stores::PRODUCT_PRICE_DECREASED_EVENT)
            };
            let path = format!("/api/stores/products/{product}/{route}");
            ok(app, Method::PUT, &path, json!({"price": price})).await;
            event(app, product_event(name), &product).await
        }
        "a product was removed" => {
            let product = product(app).await;
            ok(
                app,
                Method::DELETE,
                &format!("/api/stores/products/{product}"),
                Value::Null,
            )
            .await;
            event(app, product_event(stores::PRODUCT_REMOVED_EVENT), &product).await
        }
        "a basket was checked out" => {
            let order = checkout(app, &app.mall(100.0).await).await;
            let checked_out = (
                baskets::BASKET_AGGREGATE_CHANNEL,
                baskets::BASKET_CHECKED_OUT_EVENT,
            );
            event(app, checked_out, &order).await
        }
        "an order was created" => {
            let order = checkout(app, &app.mall(100.0).await).await;
            event(
                app,
                (
                    ordering::ORDER_AGGREGATE_CHANNEL,
                    ordering::ORDER_CREATED_EVENT,
                ),
                &order,
            )
            .await
        }
        "a shopping list was completed" => {
            let (_, list) = picked(app).await;
            let completed = (
                depot::SHOPPING_LIST_AGGREGATE_CHANNEL,
                depot::SHOPPING_LIST_COMPLETED_EVENT,
            );
            event(app, completed, &list).await
        }
        "an invoice was paid" => {
            let (order, _) = picked(app).await;
            let invoice = format!("/api/payments/invoices/{order}");
            app.eventually(&invoice, "/invoice/status", "pending").await;
            ok(app, Method::PUT, &format!("{invoice}/pay"), json!({})).await;
            event(
                app,
                (
                    payments::INVOICE_AGGREGATE_CHANNEL,
                    payments::INVOICE_PAID_EVENT,
                ),
                &order,
            )
            .await
        }
        _ => return reply(app, state).await,
    };
    Some(found)
}

/// The reply states: a real checkout runs the saga; the reply is the one answering the command
/// the saga sent for that order.
async fn reply(app: &TestApp, state: &str) -> Option<(&'static str, Envelope)> {
    let (disabled, channel, command) = match state {
        "a customer was authorized" => (
            false,
            customers::COMMAND_CHANNEL,
            customers::AUTHORIZE_CUSTOMER_COMMAND,
        ),
        "a disabled customer was refused" => (
            true,
            customers::COMMAND_CHANNEL,
            customers::AUTHORIZE_CUSTOMER_COMMAND,
        ),
        "a shopping list was created" => (
            false,
            depot::COMMAND_CHANNEL,
            depot::CREATE_SHOPPING_LIST_COMMAND,
        ),
        "shopping was initiated" => (
            false,
            depot::COMMAND_CHANNEL,
            depot::INITIATE_SHOPPING_COMMAND,
        ),
        "a payment was confirmed" => (
            false,
            payments::COMMAND_CHANNEL,
            payments::CONFIRM_PAYMENT_COMMAND,
        ),
        "an order was approved" => (
            false,
            ordering::COMMAND_CHANNEL,
            ordering::APPROVE_ORDER_COMMAND,
        ),
        "an order was rejected" => (
            true,
            ordering::COMMAND_CHANNEL,
            ordering::REJECT_ORDER_COMMAND,
        ),
        _ => return None,
    };
    let mall = app.mall(100.0).await;
    if disabled {
        ok(
            app,
            Method::PUT,
            &format!("/api/customers/{}/disable", mall.customer),
            json!({}),
        )
        .await;
    }
    let order = checkout(app, &mall).await;
    let saga = |prefix: &str, key: &str| format!("{prefix}SAGA_{key}");
    let sent = find(app, channel, |m| {
        m.name == command && m.metadata.get(&saga(am::COMMAND_HDR_PREFIX, "ID")) == Some(&order)
    })
    .await;
    let step = sent.metadata[&saga(am::COMMAND_HDR_PREFIX, "STEP")].clone();
    let replies = cosec::CREATE_ORDER_REPLY_CHANNEL;
    let answer = find(app, replies, |m| {
        m.metadata.get(&saga(am::REPLY_HDR_PREFIX, "ID")) == Some(&order)
            && m.metadata.get(&saga(am::REPLY_HDR_PREFIX, "STEP")) == Some(&step)
    })
    .await;
    Some((replies, answer))
}

/// The first message on `subject` named `name` whose payload's `id` is `id`.
async fn event(
    app: &TestApp,
    (subject, name): (&'static str, &str),
    id: &str,
) -> (&'static str, Envelope) {
    let found = find(app, subject, |m| {
        m.name == name
            && wire::to_json(&m.name, &m.payload).is_ok_and(|payload| payload["id"] == json!(id))
    })
    .await;
    (subject, found)
}

/// Reads `subject` from the start until a message satisfies `wanted`.
async fn find(app: &TestApp, subject: &str, wanted: impl Fn(&Envelope) -> bool) -> Envelope {
    let wanted = &wanted;
    testkit::until(|| async move {
        let seen = app
            .messages_within(subject, usize::MAX, Duration::from_millis(200))
            .await;
        seen.into_iter()
            .find(|m| wanted(m))
            .ok_or_else(|| format!("nothing expected on {subject}"))
    })
    .await
}

async fn ok(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let (status, reply) = app.json(method, path, body).await;
    assert_eq!(status, 200, "{path}: {reply}");
    reply
}

async fn store(app: &TestApp) -> String {
    app.create(
        "/api/stores",
        json!({"name": "Waldorf Books", "location": "Level 1"}),
    )
    .await
}

async fn product(app: &TestApp) -> String {
    let store = store(app).await;
    let product = json!({"name": "Gherkin Book", "description": "Cucumbers, a lot", "sku": "BOOK-1", "price": 12.5});
    app.create(&format!("/api/stores/{store}/products"), product)
        .await
}

async fn checkout(app: &TestApp, mall: &Mall) -> String {
    app.checkout(mall, 2).await
}

/// An order approved and its list picked by a bot; (order, list).
async fn picked(app: &TestApp) -> (String, String) {
    let order = checkout(app, &app.mall(100.0).await).await;
    let path = format!("/api/ordering/{order}");
    let approved = app.eventually(&path, "/order/status", "approved").await;
    let list = approved["order"]["shoppingId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let list_path = format!("/api/depot/shopping/{list}");
    app.eventually(&list_path, "/shoppingList/status", "available")
        .await;
    ok(
        app,
        Method::PUT,
        &format!("{list_path}/assign"),
        json!({"botId": "bot-1"}),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("{list_path}/complete"),
        json!({}),
    )
    .await;
    app.eventually(&path, "/order/status", "ready").await;
    (order, list)
}
