//! What each role may do, tried from the outside with tokens (ADR 18): a customer acts on its
//! own records only (another customer's answer as if absent, 404), a store owner on the stores
//! it opened, a bot on depot lists, the admin on everything; a role that may not do something
//! at all is refused (403). The order still goes all the way, each step by its rightful role.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{
    Api, Backend, spawn_app_with,
    tokens::{self, Role},
};

db::backend_tests!(each_role_acts_on_what_is_its_own);

/// A caller of the mall: its API with its token, and its name for failure messages.
struct As(Api, &'static str);

impl As {
    fn new(app: &Api, role: Role, subject: &'static str) -> As {
        As(app.bearer(&tokens::token(role, subject)), subject)
    }

    /// `method path body` answers `status`; the answer.
    async fn is(&self, method: Method, path: &str, body: Value, status: u16) -> Value {
        let (got, answer) = self.0.json(method.clone(), path, body).await;
        assert_eq!(got, status, "{method} {path} as {}: {answer}", self.1);
        answer
    }

    /// The `id` a create answers with 200.
    async fn creates(&self, path: &str, body: Value) -> String {
        let answer = self.is(Method::POST, path, body, 200).await;
        answer["id"].as_str().unwrap().to_owned()
    }
}

const NONE: Value = Value::Null;

async fn each_role_acts_on_what_is_its_own(backend: Backend) {
    let app = spawn_app_with(&["all"], backend, |c| c.auth = tokens::config()).await;
    let admin = As::new(&app, Role::Admin, "operator");
    let alice = As::new(&app, Role::Customer, "alice");
    let bob = As::new(&app, Role::Customer, "bob");
    let olga = As::new(&app, Role::StoreOwner, "olga");
    let rita = As::new(&app, Role::StoreOwner, "rita");
    let bot = As::new(&app, Role::Bot, "bot-1");
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);

    // Customers register themselves: their id is their token's subject.
    let me = json!({"name": "Alice", "smsNumber": "555-0001"});
    assert_eq!(alice.creates("/api/customers", me.clone()).await, "alice");
    alice
        .is(post.clone(), "/api/customers", me.clone(), 409)
        .await;
    let bob_me = json!({"name": "Bob", "smsNumber": "555-0002"});
    assert_eq!(bob.creates("/api/customers", bob_me).await, "bob");
    bot.is(post.clone(), "/api/customers", me, 403).await;
    alice
        .is(get.clone(), "/api/customers/alice", NONE, 200)
        .await;
    bob.is(get.clone(), "/api/customers/alice", NONE, 404).await;
    olga.is(get.clone(), "/api/customers/alice", NONE, 403)
        .await;
    let sms = json!({"smsNumber": "555-6666"});
    bob.is(put.clone(), "/api/customers/alice/change-sms", sms, 404)
        .await;
    alice
        .is(put.clone(), "/api/customers/alice/disable", json!({}), 403)
        .await;
    bob.is(delete.clone(), "/api/customers/alice", NONE, 404)
        .await;

    // A store owner opens stores and manages its own; everyone browses.
    let shop = json!({"name": "Mine", "location": "Here"});
    alice
        .is(post.clone(), "/api/stores", shop.clone(), 403)
        .await;
    let store = olga.creates("/api/stores", shop).await;
    let item = json!({"name": "Widget", "description": "", "sku": "W-1", "price": 9.99});
    let products = format!("/api/stores/{store}/products");
    rita.is(post.clone(), &products, item.clone(), 404).await;
    alice.is(post.clone(), &products, item.clone(), 403).await;
    let product = olga.creates(&products, item).await;
    let rebrand = json!({"name": "Rita's now"});
    rita.is(
        put.clone(),
        &format!("/api/stores/{store}/rebrand"),
        rebrand,
        404,
    )
    .await;
    let price = format!("/api/stores/products/{product}/increasePrice");
    rita.is(put.clone(), &price, json!({"price": 99.0}), 404)
        .await;
    rita.is(
        delete.clone(),
        &format!("/api/stores/products/{product}"),
        NONE,
        404,
    )
    .await;
    let participating = format!("/api/stores/{store}/participating");
    olga.is(put.clone(), &participating, json!({}), 200).await;
    for caller in [&alice, &bot, &rita] {
        caller
            .is(get.clone(), &format!("/api/stores/{store}"), NONE, 200)
            .await;
        caller.is(get.clone(), &products, NONE, 200).await;
    }

    // Payments and baskets are the customer's.
    let payment = json!({"customerId": "alice", "amount": 100.0});
    bob.is(post.clone(), "/api/payments", payment.clone(), 403)
        .await;
    let payment = alice.creates("/api/payments", payment).await;
    alice
        .is(
            post.clone(),
            "/api/baskets",
            json!({"customerId": "bob"}),
            403,
        )
        .await;
    let basket = alice
        .creates("/api/baskets", json!({"customerId": "alice"}))
        .await;
    let path = format!("/api/baskets/{basket}");
    bob.is(get.clone(), &path, NONE, 404).await;
    bot.is(get.clone(), &path, NONE, 403).await;
    let add = json!({"productId": product, "quantity": 2});
    bob.is(put.clone(), &format!("{path}/addItem"), add.clone(), 404)
        .await;
    alice
        .is(put.clone(), &format!("{path}/addItem"), add, 200)
        .await;
    bob.is(delete.clone(), &path, NONE, 404).await;
    let pay = json!({"paymentId": payment});
    bob.is(put.clone(), &format!("{path}/checkout"), pay.clone(), 404)
        .await;
    alice
        .is(put.clone(), &format!("{path}/checkout"), pay, 200)
        .await;

    // The order: its customer's to read; creating one directly is the mall's own business.
    let order = format!("/api/ordering/{basket}");
    let approved = alice
        .0
        .eventually(&order, "/order/status", "approved")
        .await;
    bob.is(get.clone(), &order, NONE, 404).await;
    bob.is(delete.clone(), &order, NONE, 404).await;
    bot.is(get.clone(), &order, NONE, 403).await;
    alice
        .is(
            post.clone(),
            "/api/ordering",
            json!({"customerId": "alice"}),
            403,
        )
        .await;
    let saga = format!("/api/cosec/sagas/{basket}");
    alice.is(get.clone(), &saga, NONE, 403).await;
    admin.is(get.clone(), &saga, NONE, 200).await;
    // The console's data and the stuck sagas: the admin's too (its page is public: no data).
    for path in [
        "/api/console/board",
        "/api/console/operations",
        "/api/cosec/stuck-sagas",
    ] {
        alice.is(get.clone(), path, NONE, 403).await;
        admin.is(get.clone(), path, NONE, 200).await;
    }
    let replay = "/api/console/dead-letters/payments/payments-orders/m-1/replay";
    alice.is(post.clone(), replay, NONE, 403).await;
    admin.is(post.clone(), replay, NONE, 404).await;

    // Search: a customer's own orders; across customers, the admin's.
    let found = format!("/api/search/orders/{basket}");
    alice
        .0
        .eventually(&found, "/order/customerId", "alice")
        .await;
    bob.is(get.clone(), &found, NONE, 404).await;
    let search = "/api/search/orders";
    let mine = alice.is(post.clone(), search, json!({}), 200).await;
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1, "{mine}");
    let theirs = bob.is(post.clone(), search, json!({}), 200).await;
    assert_eq!(theirs["orders"].as_array().unwrap().len(), 0, "{theirs}");
    let of_alice = json!({"filters": {"customerId": "alice"}});
    bob.is(post.clone(), search, of_alice.clone(), 403).await;
    bot.is(post.clone(), search, json!({}), 403).await;
    admin.is(post.clone(), search, of_alice, 200).await;
    let notifications = "/api/notifications?customerId=alice";
    bob.is(get.clone(), notifications, NONE, 403).await;
    alice.is(get.clone(), notifications, NONE, 200).await;

    // The depot is the bots'.
    let list = approved["order"]["shoppingId"].as_str().unwrap();
    let list = format!("/api/depot/shopping/{list}");
    alice.is(get.clone(), &list, NONE, 403).await;
    bot.is(post.clone(), "/api/depot/shopping", json!({}), 403)
        .await;
    bot.0
        .eventually(&list, "/shoppingList/status", "available")
        .await;
    let assign = json!({"botId": "bot-1"});
    bot.is(put.clone(), &format!("{list}/assign"), assign, 200)
        .await;
    bot.is(put.clone(), &format!("{list}/complete"), json!({}), 200)
        .await;

    // The invoice bills the order's customer.
    let invoice = format!("/api/payments/invoices/{basket}");
    alice
        .0
        .eventually(&invoice, "/invoice/status", "pending")
        .await;
    bob.is(get.clone(), &invoice, NONE, 404).await;
    bob.is(put.clone(), &format!("{invoice}/pay"), json!({}), 404)
        .await;
    alice
        .is(put.clone(), &format!("{invoice}/pay"), json!({}), 200)
        .await;
    alice.0.order_is(&basket, "completed").await;
}

#[tokio::test]
async fn grpc_is_the_modules_api() {
    use proto::stores::{GetStoresRequest, stores_service_client::StoresServiceClient};
    let app = spawn_app_with(&["stores"], Backend::Sqlite, |c| c.auth = tokens::config()).await;
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
        let mut request = tonic::Request::new(GetStoresRequest {});
        let token = tokens::token(role, "someone");
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let answer = client.get_stores(request).await;
        assert_eq!(answer.err().map(|s| s.code()), expected, "{role:?}");
    }
}
