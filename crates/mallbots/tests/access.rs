//! What each role may do, tried from the outside with tokens (ADR 18): a customer acts on its
//! own records only (another customer's answer as if absent, 404), a store owner on the stores
//! it opened, a bot on depot lists, the admin on everything; a role that may not do something
//! at all is refused (403). The order still goes all the way, each step by its rightful role.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use host::auth::{AuthConfig, Role};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Api, Backend, spawn_app_with};

db::backend_tests!(each_role_acts_on_what_is_its_own);

const SECRET: &str = "the access tests' secret, long enough";

fn config() -> AuthConfig {
    AuthConfig {
        auth_hs256_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    }
}

fn as_(app: &Api, role: Role, subject: &str) -> Api {
    let token = host::auth::mint(&config(), role, subject, Duration::from_secs(600))
        .unwrap()
        .token;
    app.bearer(&token)
}

/// `(method, path, body)` answers `status` for `api` (`who` names it in the failure).
async fn expect(
    api: &Api,
    who: &str,
    method: Method,
    path: &str,
    body: Value,
    status: u16,
) -> Value {
    let (got, answer) = api.json(method.clone(), path, body).await;
    assert_eq!(got, status, "{method} {path} as {who}: {answer}");
    answer
}

async fn each_role_acts_on_what_is_its_own(backend: Backend) {
    let app = spawn_app_with(&["all"], backend, |c| c.auth = config()).await;
    let admin = as_(&app, Role::Admin, "operator");
    let alice = as_(&app, Role::Customer, "alice");
    let bob = as_(&app, Role::Customer, "bob");
    let olga = as_(&app, Role::StoreOwner, "olga");
    let rita = as_(&app, Role::StoreOwner, "rita");
    let bot = as_(&app, Role::Bot, "bot-1");
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);

    // Customers register themselves: their id is their token's subject.
    let me = json!({"name": "Alice", "smsNumber": "555-0001"});
    let id = expect(
        &alice,
        "alice",
        post.clone(),
        "/api/customers",
        me.clone(),
        200,
    )
    .await;
    assert_eq!(id["id"], "alice");
    expect(
        &alice,
        "alice",
        post.clone(),
        "/api/customers",
        me.clone(),
        409,
    )
    .await;
    expect(
        &bob,
        "bob",
        post.clone(),
        "/api/customers",
        json!({"name": "Bob", "smsNumber": "555-0002"}),
        200,
    )
    .await;
    expect(&bot, "a bot", post.clone(), "/api/customers", me, 403).await;
    expect(
        &alice,
        "alice",
        get.clone(),
        "/api/customers/alice",
        Value::Null,
        200,
    )
    .await;
    expect(
        &bob,
        "bob",
        get.clone(),
        "/api/customers/alice",
        Value::Null,
        404,
    )
    .await;
    expect(
        &olga,
        "a store owner",
        get.clone(),
        "/api/customers/alice",
        Value::Null,
        403,
    )
    .await;
    expect(
        &bob,
        "bob",
        put.clone(),
        "/api/customers/alice/change-sms",
        json!({"smsNumber": "555-6666"}),
        404,
    )
    .await;
    expect(
        &alice,
        "alice",
        put.clone(),
        "/api/customers/alice/disable",
        json!({}),
        403,
    )
    .await;

    // A store owner opens stores and manages its own; everyone browses.
    expect(
        &alice,
        "alice",
        post.clone(),
        "/api/stores",
        json!({"name": "Mine", "location": "Here"}),
        403,
    )
    .await;
    let store = expect(
        &olga,
        "olga",
        post.clone(),
        "/api/stores",
        json!({"name": "Olga's", "location": "Level 1"}),
        200,
    )
    .await;
    let store = store["id"].as_str().unwrap().to_owned();
    let item = json!({"name": "Widget", "description": "", "sku": "W-1", "price": 9.99});
    let products = format!("/api/stores/{store}/products");
    expect(&rita, "rita", post.clone(), &products, item.clone(), 404).await;
    expect(&alice, "alice", post.clone(), &products, item.clone(), 403).await;
    let product = expect(&olga, "olga", post.clone(), &products, item, 200).await;
    let product = product["id"].as_str().unwrap().to_owned();
    expect(
        &rita,
        "rita",
        put.clone(),
        &format!("/api/stores/{store}/rebrand"),
        json!({"name": "Rita's now"}),
        404,
    )
    .await;
    expect(
        &rita,
        "rita",
        put.clone(),
        &format!("/api/stores/products/{product}/increasePrice"),
        json!({"price": 99.0}),
        404,
    )
    .await;
    expect(
        &olga,
        "olga",
        put.clone(),
        &format!("/api/stores/{store}/participating"),
        json!({}),
        200,
    )
    .await;
    for (who, api) in [("alice", &alice), ("a bot", &bot), ("rita", &rita)] {
        expect(
            api,
            who,
            get.clone(),
            &format!("/api/stores/{store}"),
            Value::Null,
            200,
        )
        .await;
        expect(api, who, get.clone(), &products, Value::Null, 200).await;
    }

    // Payments and baskets are the customer's.
    let payment = json!({"customerId": "alice", "amount": 100.0});
    expect(
        &bob,
        "bob",
        post.clone(),
        "/api/payments",
        payment.clone(),
        403,
    )
    .await;
    let payment = expect(&alice, "alice", post.clone(), "/api/payments", payment, 200).await;
    expect(
        &alice,
        "alice",
        post.clone(),
        "/api/baskets",
        json!({"customerId": "bob"}),
        403,
    )
    .await;
    let basket = expect(
        &alice,
        "alice",
        post.clone(),
        "/api/baskets",
        json!({"customerId": "alice"}),
        200,
    )
    .await;
    let basket = basket["id"].as_str().unwrap().to_owned();
    let path = format!("/api/baskets/{basket}");
    expect(&bob, "bob", get.clone(), &path, Value::Null, 404).await;
    expect(&bot, "a bot", get.clone(), &path, Value::Null, 403).await;
    let add = json!({"productId": product, "quantity": 2});
    expect(
        &bob,
        "bob",
        put.clone(),
        &format!("{path}/addItem"),
        add.clone(),
        404,
    )
    .await;
    expect(
        &alice,
        "alice",
        put.clone(),
        &format!("{path}/addItem"),
        add,
        200,
    )
    .await;
    expect(&bob, "bob", delete.clone(), &path, Value::Null, 404).await;
    expect(
        &alice,
        "alice",
        put.clone(),
        &format!("{path}/checkout"),
        json!({"paymentId": payment["id"]}),
        200,
    )
    .await;

    // The order: its customer's to read; creating one directly is the mall's own business.
    let order = format!("/api/ordering/{basket}");
    let approved = alice.eventually(&order, "/order/status", "approved").await;
    expect(&bob, "bob", get.clone(), &order, Value::Null, 404).await;
    expect(&bot, "a bot", get.clone(), &order, Value::Null, 403).await;
    expect(
        &alice,
        "alice",
        post.clone(),
        "/api/ordering",
        json!({"customerId": "alice"}),
        403,
    )
    .await;
    expect(
        &alice,
        "alice",
        get.clone(),
        &format!("/api/cosec/sagas/{basket}"),
        Value::Null,
        403,
    )
    .await;
    expect(
        &admin,
        "the admin",
        get.clone(),
        &format!("/api/cosec/sagas/{basket}"),
        Value::Null,
        200,
    )
    .await;

    // Search: a customer's own orders; across customers, the admin's.
    let found = alice
        .eventually(
            &format!("/api/search/orders/{basket}"),
            "/order/customerId",
            "alice",
        )
        .await;
    assert_eq!(found["order"]["orderId"], basket.as_str());
    expect(
        &bob,
        "bob",
        get.clone(),
        &format!("/api/search/orders/{basket}"),
        Value::Null,
        404,
    )
    .await;
    let mine = expect(
        &alice,
        "alice",
        post.clone(),
        "/api/search/orders",
        json!({}),
        200,
    )
    .await;
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1, "{mine}");
    let theirs = expect(
        &bob,
        "bob",
        post.clone(),
        "/api/search/orders",
        json!({}),
        200,
    )
    .await;
    assert_eq!(theirs["orders"].as_array().unwrap().len(), 0, "{theirs}");
    expect(
        &bob,
        "bob",
        post.clone(),
        "/api/search/orders",
        json!({"filters": {"customerId": "alice"}}),
        403,
    )
    .await;
    expect(
        &bot,
        "a bot",
        post.clone(),
        "/api/search/orders",
        json!({}),
        403,
    )
    .await;
    expect(
        &admin,
        "the admin",
        post.clone(),
        "/api/search/orders",
        json!({"filters": {"customerId": "alice"}}),
        200,
    )
    .await;
    expect(
        &bob,
        "bob",
        get.clone(),
        "/api/notifications?customerId=alice",
        Value::Null,
        403,
    )
    .await;
    expect(
        &alice,
        "alice",
        get.clone(),
        "/api/notifications?customerId=alice",
        Value::Null,
        200,
    )
    .await;

    // The depot is the bots'.
    let list = format!(
        "/api/depot/shopping/{}",
        approved["order"]["shoppingId"].as_str().unwrap()
    );
    expect(&alice, "alice", get.clone(), &list, Value::Null, 403).await;
    expect(
        &bot,
        "a bot",
        post.clone(),
        "/api/depot/shopping",
        json!({}),
        403,
    )
    .await;
    bot.eventually(&list, "/shoppingList/status", "available")
        .await;
    expect(
        &bot,
        "a bot",
        put.clone(),
        &format!("{list}/assign"),
        json!({"botId": "bot-1"}),
        200,
    )
    .await;
    expect(
        &bot,
        "a bot",
        put.clone(),
        &format!("{list}/complete"),
        json!({}),
        200,
    )
    .await;

    // The invoice bills the order's customer.
    let invoice = format!("/api/payments/invoices/{basket}");
    alice
        .eventually(&invoice, "/invoice/status", "pending")
        .await;
    expect(&bob, "bob", get.clone(), &invoice, Value::Null, 404).await;
    expect(
        &bob,
        "bob",
        put.clone(),
        &format!("{invoice}/pay"),
        json!({}),
        404,
    )
    .await;
    expect(
        &alice,
        "alice",
        put.clone(),
        &format!("{invoice}/pay"),
        json!({}),
        200,
    )
    .await;
    alice.order_is(&basket, "completed").await;
}

#[tokio::test]
async fn grpc_is_the_modules_api() {
    use proto::stores::{GetStoresRequest, stores_service_client::StoresServiceClient};
    let app = spawn_app_with(&["stores"], Backend::Sqlite, |c| c.auth = config()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = StoresServiceClient::new(channel);
    for (role, expected) in [
        (Role::Customer, Some(tonic::Code::PermissionDenied)),
        (Role::StoreOwner, Some(tonic::Code::PermissionDenied)),
        (Role::Bot, Some(tonic::Code::PermissionDenied)),
        (Role::Admin, None),
        (Role::Service, None),
    ] {
        let token = host::auth::mint(&config(), role, "someone", Duration::from_secs(60))
            .unwrap()
            .token;
        let mut request = tonic::Request::new(GetStoresRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let answer = client.get_stores(request).await;
        assert_eq!(answer.err().map(|s| s.code()), expected, "{role:?}");
    }
}
