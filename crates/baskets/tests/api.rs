//! The baskets module through the running app (with stores, customers and payments), on each
//! backend: caches fed by events, the gRPC fallback, validation, and the checkout event.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use prost::Message as _;
use proto::baskets as pb;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, error_body as error, spawn_app};

db::backend_tests!(
    a_basket_is_filled_and_checked_out,
    the_product_fallback_finds_what_the_cache_lacks,
    the_caches_follow_stores_events,
    an_unknown_product_is_the_books_404,
    starting_and_checking_out_are_validated,
    items_come_off_and_a_basket_is_cancelled,
    unknown_baskets_are_not_found,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&["stores", "customers", "payments", "baskets"], backend).await
}

async fn a_basket_is_filled_and_checked_out(backend: Backend) {
    let app = app(backend).await;
    let mall = app.mall(200.0).await;
    let basket = app
        .create("/api/baskets", json!({"customerId": mall.customer}))
        .await;
    let add = format!("/api/baskets/{basket}/addItem");
    assert_eq!(
        app.json(
            Method::PUT,
            &add,
            json!({"productId": mall.product, "quantity": 2})
        )
        .await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(
            Method::PUT,
            &add,
            json!({"productId": mall.product, "quantity": 3})
        )
        .await,
        (200, json!({}))
    );
    let item = json!({"storeId": mall.store, "productId": mall.product, "storeName": "Store ABC", "productName": "Product ABC", "productPrice": 9.99, "quantity": 5});
    let expected = json!({"basket": {"id": basket, "items": [item]}});
    assert_eq!(
        app.json(Method::GET, &format!("/api/baskets/{basket}"), Value::Null)
            .await,
        (200, expected)
    );

    let checkout = format!("/api/baskets/{basket}/checkout");
    assert_eq!(
        app.json(Method::PUT, &checkout, json!({"paymentId": mall.payment}))
            .await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(Method::PUT, &checkout, json!({"paymentId": mall.payment}))
            .await,
        (400, error(9, "the basket cannot be modified"))
    );

    let messages = app.messages(pb::BASKET_AGGREGATE_CHANNEL, 2).await;
    let names: Vec<_> = messages.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["basketsapi.BasketStarted", "basketsapi.BasketCheckedOut"]
    );
    let event = pb::BasketCheckedOut::decode(messages[1].payload.as_slice()).unwrap();
    assert_eq!(
        (
            event.id.as_str(),
            event.customer_id.as_str(),
            event.payment_id.as_str()
        ),
        (
            basket.as_str(),
            mall.customer.as_str(),
            mall.payment.as_str()
        )
    );
    let line = &event.items[0];
    assert_eq!(
        (
            line.store_name.as_str(),
            line.product_name.as_str(),
            line.price,
            line.quantity
        ),
        ("Store ABC", "Product ABC", 9.99, 5)
    );
}

async fn the_product_fallback_finds_what_the_cache_lacks(backend: Backend) {
    let app = app(backend).await;
    let mall = app.mall(200.0).await;
    let basket = app
        .create("/api/baskets", json!({"customerId": mall.customer}))
        .await;
    // Straight after creation the cache may not have the product yet: the fallback covers it,
    // and either way the item carries the product's current name and price.
    let add = format!("/api/baskets/{basket}/addItem");
    assert_eq!(
        app.json(
            Method::PUT,
            &add,
            json!({"productId": mall.product, "quantity": 1})
        )
        .await
        .0,
        200
    );
    let (_, basket) = app
        .json(Method::GET, &format!("/api/baskets/{basket}"), Value::Null)
        .await;
    assert_eq!(basket["basket"]["items"][0]["productName"], "Product ABC");
}

async fn an_unknown_product_is_the_books_404(backend: Backend) {
    let app = app(backend).await;
    let mall = app.mall(200.0).await;
    let basket = app
        .create("/api/baskets", json!({"customerId": mall.customer}))
        .await;
    let add = app
        .json(
            Method::PUT,
            &format!("/api/baskets/{basket}/addItem"),
            json!({"productId": "nope", "quantity": 1}),
        )
        .await;
    assert_eq!(
        add,
        (
            404,
            error(5, "product fallback failed: product was not located")
        )
    );
}

async fn starting_and_checking_out_are_validated(backend: Backend) {
    let app = app(backend).await;
    let mall = app.mall(200.0).await;
    assert_eq!(
        app.json(Method::POST, "/api/baskets", json!({})).await,
        (400, error(3, "the customer id cannot be blank"))
    );
    assert_eq!(
        app.json(
            Method::POST,
            "/api/baskets",
            json!({"customerId": "nobody"})
        )
        .await,
        (404, error(5, "customer with that ID does not exist"))
    );
    let basket = app
        .create("/api/baskets", json!({"customerId": mall.customer}))
        .await;
    let checkout = format!("/api/baskets/{basket}/checkout");
    assert_eq!(
        app.json(Method::PUT, &checkout, json!({"paymentId": mall.payment}))
            .await,
        (400, error(9, "the basket has no items"))
    );
    app.json(
        Method::PUT,
        &format!("/api/baskets/{basket}/addItem"),
        json!({"productId": mall.product, "quantity": 1}),
    )
    .await;
    assert_eq!(
        app.json(Method::PUT, &checkout, json!({})).await,
        (400, error(3, "the payment id cannot be blank"))
    );
    assert_eq!(
        app.json(Method::PUT, &checkout, json!({"paymentId": "nope"}))
            .await,
        (404, error(5, "payment with that ID does not exist"))
    );
    let stranger = app
        .create(
            "/api/customers",
            json!({"name": "Stranger", "smsNumber": "1"}),
        )
        .await;
    let foreign = app
        .create(
            "/api/payments",
            json!({"customerId": stranger, "amount": 5.0}),
        )
        .await;
    let refused = app
        .json(Method::PUT, &checkout, json!({"paymentId": foreign}))
        .await;
    assert_eq!(
        refused,
        (
            400,
            error(9, "the payment was authorized for another customer")
        )
    );
    let negative = app
        .json(
            Method::PUT,
            &format!("/api/baskets/{basket}/addItem"),
            json!({"productId": mall.product, "quantity": -1}),
        )
        .await;
    assert_eq!(
        negative,
        (400, error(3, "the item quantity cannot be negative"))
    );
}

async fn items_come_off_and_a_basket_is_cancelled(backend: Backend) {
    let app = app(backend).await;
    let mall = app.mall(200.0).await;
    let basket = app
        .create("/api/baskets", json!({"customerId": mall.customer}))
        .await;
    app.json(
        Method::PUT,
        &format!("/api/baskets/{basket}/addItem"),
        json!({"productId": mall.product, "quantity": 3}),
    )
    .await;
    let remove = format!("/api/baskets/{basket}/removeItem");
    assert_eq!(
        app.json(
            Method::PUT,
            &remove,
            json!({"productId": mall.product, "quantity": 2})
        )
        .await,
        (200, json!({}))
    );
    let (_, left) = app
        .json(Method::GET, &format!("/api/baskets/{basket}"), Value::Null)
        .await;
    assert_eq!(left["basket"]["items"][0]["quantity"], 1);
    let too_many = app
        .json(
            Method::PUT,
            &remove,
            json!({"productId": mall.product, "quantity": 2}),
        )
        .await;
    assert_eq!(
        too_many,
        (
            400,
            error(
                9,
                "the basket holds fewer of that product than would be removed"
            )
        )
    );
    assert_eq!(
        app.json(
            Method::PUT,
            &remove,
            json!({"productId": mall.product, "quantity": 1})
        )
        .await
        .0,
        200
    );
    let (_, empty) = app
        .json(Method::GET, &format!("/api/baskets/{basket}"), Value::Null)
        .await;
    assert_eq!(empty["basket"]["items"], json!([]));

    assert_eq!(
        app.json(
            Method::DELETE,
            &format!("/api/baskets/{basket}"),
            Value::Null
        )
        .await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(
            Method::DELETE,
            &format!("/api/baskets/{basket}"),
            Value::Null
        )
        .await,
        (400, error(9, "the basket cannot be cancelled"))
    );
    let names: Vec<String> = app
        .messages(pb::BASKET_AGGREGATE_CHANNEL, 2)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        ["basketsapi.BasketStarted", "basketsapi.BasketCanceled"]
    );
}

async fn unknown_baskets_are_not_found(backend: Backend) {
    let app = app(backend).await;
    let missing = error(5, "basket with that ID does not exist");
    assert_eq!(
        app.json(Method::GET, "/api/baskets/nope", Value::Null)
            .await,
        (404, missing.clone())
    );
    assert_eq!(
        app.json(Method::DELETE, "/api/baskets/nope", Value::Null)
            .await,
        (404, missing.clone())
    );
    assert_eq!(
        app.json(
            Method::PUT,
            "/api/baskets/nope/checkout",
            json!({"paymentId": "p"})
        )
        .await,
        (404, missing.clone())
    );
    assert_eq!(
        app.json(
            Method::PUT,
            "/api/baskets/nope/removeItem",
            json!({"productId": "p", "quantity": 1})
        )
        .await,
        (404, missing)
    );
}

async fn cached_product(app: &TestApp, id: &str) -> Option<(String, f64)> {
    use db::Row as _;
    let row = sqlx::query("SELECT name, price FROM baskets.products_cache WHERE id = $1")
        .bind(id)
        .fetch_optional(app.db.pool())
        .await
        .unwrap();
    row.map(|row| (row.get(0), row.get(1)))
}

async fn eventually_cached(app: &TestApp, id: &str, expected: Option<(&str, f64)>) {
    let started = std::time::Instant::now();
    loop {
        let cached = cached_product(app, id).await;
        if cached.as_ref().map(|(n, p)| (n.as_str(), *p)) == expected {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "cache of {id} is {cached:?}, expected {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn the_caches_follow_stores_events(backend: Backend) {
    let app = app(backend).await;
    let mall = app.mall(200.0).await;
    eventually_cached(&app, &mall.product, Some(("Product ABC", 9.99))).await;
    let path = |action: &str| format!("/api/stores/products/{}/{action}", mall.product);
    app.json(
        Method::PUT,
        &path("rebrand"),
        json!({"name": "Product XYZ", "description": "d"}),
    )
    .await;
    app.json(Method::PUT, &path("increasePrice"), json!({"price": 12.0}))
        .await;
    eventually_cached(&app, &mall.product, Some(("Product XYZ", 12.0))).await;
    app.json(
        Method::DELETE,
        &format!("/api/stores/products/{}", mall.product),
        Value::Null,
    )
    .await;
    eventually_cached(&app, &mall.product, None).await;
}
