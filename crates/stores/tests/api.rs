//! The stores module through the running app (REST, gRPC, broker), on each backend.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use prost::Message as _;
use proto::stores as pb;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, error_body as error, spawn_app};

db::backend_tests!(
    a_store_is_created_listed_and_announced,
    blank_store_fields_are_refused_with_the_books_messages,
    participation_is_toggled_once_each_way,
    a_store_is_rebranded,
    unknown_ids_are_not_found,
    products_are_added_changed_and_removed,
    product_input_is_validated,
    malformed_json_is_a_400_with_the_error_body,
    the_grpc_service_serves_stores_and_products,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&["stores"], backend).await
}

async fn create_store(app: &TestApp, name: &str) -> String {
    let (status, body) = app
        .json(
            Method::POST,
            "/api/stores",
            json!({"name": name, "location": "The mall"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn add_product(app: &TestApp, store: &str) -> String {
    let product = json!({"name": "Product ABC", "description": "A product", "sku": "productABC", "price": 9.99});
    let (status, body) = app
        .json(
            Method::POST,
            &format!("/api/stores/{store}/products"),
            product,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn a_store_is_created_listed_and_announced(backend: Backend) {
    let app = app(backend).await;
    // The book's sample request (create_order.http).
    let id = create_store(&app, "Store ABC").await;
    let expected =
        json!({"id": id, "name": "Store ABC", "location": "The mall", "participating": false});
    assert_eq!(
        app.json(Method::GET, &format!("/api/stores/{id}"), Value::Null)
            .await,
        (200, json!({"store": expected}))
    );
    assert_eq!(
        app.json(Method::GET, "/api/stores", Value::Null).await,
        (200, json!({"stores": [expected]}))
    );
    assert_eq!(
        app.json(Method::GET, "/api/stores/participating", Value::Null)
            .await,
        (200, json!({"stores": []}))
    );

    let messages = app.messages(pb::STORE_AGGREGATE_CHANNEL, 1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].name, "storesapi.StoreCreated");
    let event = pb::StoreCreated::decode(messages[0].payload.as_slice()).unwrap();
    assert_eq!(
        event,
        pb::StoreCreated {
            id,
            name: "Store ABC".into(),
            location: "The mall".into()
        }
    );
}

async fn blank_store_fields_are_refused_with_the_books_messages(backend: Backend) {
    let app = app(backend).await;
    let blank_name = app
        .json(
            Method::POST,
            "/api/stores",
            json!({"name": "", "location": "The mall"}),
        )
        .await;
    assert_eq!(
        blank_name,
        (400, error(3, "the store name cannot be blank"))
    );
    let blank_location = app
        .json(
            Method::POST,
            "/api/stores",
            json!({"name": "Store", "location": " "}),
        )
        .await;
    assert_eq!(
        blank_location,
        (400, error(3, "the store location cannot be blank"))
    );
    // The name is checked first, and an empty body is a body with every field blank.
    assert_eq!(
        app.json(Method::POST, "/api/stores", Value::Null).await,
        (400, error(3, "the store name cannot be blank"))
    );
    assert_eq!(
        app.json(Method::GET, "/api/stores", Value::Null).await,
        (200, json!({"stores": []}))
    );
}

async fn participation_is_toggled_once_each_way(backend: Backend) {
    let app = app(backend).await;
    let id = create_store(&app, "Store ABC").await;
    let path = format!("/api/stores/{id}/participating");
    assert_eq!(
        app.json(Method::PUT, &path, json!({})).await,
        (200, json!({}))
    );
    let (_, participating) = app
        .json(Method::GET, "/api/stores/participating", Value::Null)
        .await;
    assert_eq!(participating["stores"][0]["participating"], true);
    assert_eq!(
        app.json(Method::PUT, &path, json!({})).await,
        (400, error(9, "the store is already participating"))
    );
    assert_eq!(
        app.json(Method::DELETE, &path, Value::Null).await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(Method::DELETE, &path, Value::Null).await,
        (400, error(9, "the store is already not participating"))
    );
    assert_eq!(
        app.json(Method::GET, "/api/stores/participating", Value::Null)
            .await,
        (200, json!({"stores": []}))
    );

    let messages = app.messages(pb::STORE_AGGREGATE_CHANNEL, 3).await;
    let names: Vec<_> = messages.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "storesapi.StoreCreated",
            "storesapi.StoreParticipatingToggled",
            "storesapi.StoreParticipatingToggled"
        ]
    );
    let toggles: Vec<bool> = messages[1..]
        .iter()
        .map(|m| {
            pb::StoreParticipationToggled::decode(m.payload.as_slice())
                .unwrap()
                .participating
        })
        .collect();
    assert_eq!(toggles, [true, false]);
}

async fn a_store_is_rebranded(backend: Backend) {
    let app = app(backend).await;
    let id = create_store(&app, "Store ABC").await;
    let path = format!("/api/stores/{id}/rebrand");
    assert_eq!(
        app.json(Method::PUT, &path, json!({"name": "Store XYZ"}))
            .await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(Method::PUT, &path, json!({"name": ""})).await,
        (400, error(3, "the store name cannot be blank"))
    );
    let (_, store) = app
        .json(Method::GET, &format!("/api/stores/{id}"), Value::Null)
        .await;
    assert_eq!(store["store"]["name"], "Store XYZ");
    let messages = app.messages(pb::STORE_AGGREGATE_CHANNEL, 2).await;
    assert_eq!(messages[1].name, "storesapi.StoreRebranded");
    assert_eq!(
        pb::StoreRebranded::decode(messages[1].payload.as_slice()).unwrap(),
        pb::StoreRebranded {
            id,
            name: "Store XYZ".into()
        }
    );
}

async fn unknown_ids_are_not_found(backend: Backend) {
    let app = app(backend).await;
    let store = error(5, "store with that ID does not exist");
    let product = error(5, "product with that ID does not exist");
    assert_eq!(
        app.json(Method::GET, "/api/stores/nope", Value::Null).await,
        (404, store.clone())
    );
    assert_eq!(
        app.json(Method::PUT, "/api/stores/nope/participating", json!({}))
            .await,
        (404, store.clone())
    );
    assert_eq!(
        app.json(
            Method::DELETE,
            "/api/stores/nope/participating",
            Value::Null
        )
        .await,
        (404, store.clone())
    );
    assert_eq!(
        app.json(
            Method::PUT,
            "/api/stores/nope/rebrand",
            json!({"name": "X"})
        )
        .await,
        (404, store.clone())
    );
    assert_eq!(
        app.json(Method::GET, "/api/stores/nope/products", Value::Null)
            .await,
        (404, store.clone())
    );
    let add = json!({"name": "P", "price": 1.0});
    assert_eq!(
        app.json(Method::POST, "/api/stores/nope/products", add)
            .await,
        (404, store)
    );
    assert_eq!(
        app.json(Method::GET, "/api/stores/products/nope", Value::Null)
            .await,
        (404, product.clone())
    );
    assert_eq!(
        app.json(Method::DELETE, "/api/stores/products/nope", Value::Null)
            .await,
        (404, product.clone())
    );
    let rebrand = json!({"name": "X", "description": ""});
    assert_eq!(
        app.json(Method::PUT, "/api/stores/products/nope/rebrand", rebrand)
            .await,
        (404, product.clone())
    );
    assert_eq!(
        app.json(
            Method::PUT,
            "/api/stores/products/nope/increasePrice",
            json!({"price": 5})
        )
        .await,
        (404, product)
    );
    // No orphan streams were written, and nothing was announced.
    let quiet = std::time::Duration::from_secs(1);
    assert_eq!(
        app.messages_within(pb::STORE_AGGREGATE_CHANNEL, 1, quiet)
            .await
            .len(),
        0
    );
}

async fn products_are_added_changed_and_removed(backend: Backend) {
    let app = app(backend).await;
    let store = create_store(&app, "Store ABC").await;
    let id = add_product(&app, &store).await;
    let product = json!({"id": id, "storeId": store, "name": "Product ABC", "description": "A product", "sku": "productABC", "price": 9.99});
    assert_eq!(
        app.json(
            Method::GET,
            &format!("/api/stores/products/{id}"),
            Value::Null
        )
        .await,
        (200, json!({"product": product}))
    );
    assert_eq!(
        app.json(
            Method::GET,
            &format!("/api/stores/{store}/products"),
            Value::Null
        )
        .await,
        (200, json!({"products": [product]}))
    );

    let path = |action: &str| format!("/api/stores/products/{id}/{action}");
    assert_eq!(
        app.json(
            Method::PUT,
            &path("rebrand"),
            json!({"name": "Product XYZ", "description": "Better"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        app.json(Method::PUT, &path("increasePrice"), json!({"price": 12.49}))
            .await
            .0,
        200
    );
    assert_eq!(
        app.json(Method::PUT, &path("decreasePrice"), json!({"price": 11.0}))
            .await
            .0,
        200
    );
    let (_, changed) = app
        .json(
            Method::GET,
            &format!("/api/stores/products/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(
        (
            &changed["product"]["name"],
            &changed["product"]["description"]
        ),
        (&json!("Product XYZ"), &json!("Better"))
    );
    assert!(
        (changed["product"]["price"].as_f64().unwrap() - 11.0).abs() < 1e-9,
        "{changed}"
    );

    assert_eq!(
        app.json(
            Method::DELETE,
            &format!("/api/stores/products/{id}"),
            Value::Null
        )
        .await,
        (200, json!({}))
    );
    assert_eq!(
        app.json(
            Method::GET,
            &format!("/api/stores/products/{id}"),
            Value::Null
        )
        .await
        .0,
        404
    );
    assert_eq!(
        app.json(
            Method::GET,
            &format!("/api/stores/{store}/products"),
            Value::Null
        )
        .await,
        (200, json!({"products": []}))
    );

    let messages = app.messages(pb::PRODUCT_AGGREGATE_CHANNEL, 5).await;
    let names: Vec<_> = messages.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "storesapi.ProductAdded",
            "storesapi.ProductRebranded",
            "storesapi.ProductPriceIncreased",
            "storesapi.ProductPriceDecreased",
            "storesapi.ProductRemoved"
        ]
    );
    let added = pb::ProductAdded::decode(messages[0].payload.as_slice()).unwrap();
    assert_eq!(
        (added.store_id.as_str(), added.sku.as_str(), added.price),
        (store.as_str(), "productABC", 9.99)
    );
    let up = pb::ProductPriceChanged::decode(messages[2].payload.as_slice()).unwrap();
    let down = pb::ProductPriceChanged::decode(messages[3].payload.as_slice()).unwrap();
    assert!(
        (up.delta - 2.5).abs() < 1e-9 && (down.delta + 1.49).abs() < 1e-9,
        "{up:?} {down:?}"
    );
    assert!(
        messages
            .iter()
            .all(|m| pb::ProductRemoved::decode(m.payload.as_slice()).unwrap().id == id)
    );
}

async fn product_input_is_validated(backend: Backend) {
    let app = app(backend).await;
    let store = create_store(&app, "Store ABC").await;
    let products = format!("/api/stores/{store}/products");
    let add = |body: Value| app.json(Method::POST, &products, body);
    let blank = add(json!({"name": "", "price": 1.0})).await;
    assert_eq!(
        blank,
        (
            400,
            error(3, "initializing product: the product name cannot be blank")
        )
    );
    let negative = add(json!({"name": "P", "price": -1.0})).await;
    assert_eq!(
        negative,
        (
            400,
            error(
                3,
                "initializing product: the product price cannot be negative"
            )
        )
    );
    let zero = add(json!({"name": "P", "price": 0})).await;
    assert_eq!(
        zero,
        (
            400,
            error(
                3,
                "initializing product: the product price must be greater than zero"
            )
        )
    );

    let id = add_product(&app, &store).await;
    let path = |action: &str| format!("/api/stores/products/{id}/{action}");
    let lower = app
        .json(Method::PUT, &path("increasePrice"), json!({"price": 5.0}))
        .await;
    assert_eq!(
        lower,
        (400, error(9, "the price change would be a decrease"))
    );
    let higher = app
        .json(Method::PUT, &path("decreasePrice"), json!({"price": 20.0}))
        .await;
    assert_eq!(
        higher,
        (400, error(9, "the price change would be an increase"))
    );
    let zero = app
        .json(Method::PUT, &path("decreasePrice"), json!({"price": 0}))
        .await;
    assert_eq!(
        zero,
        (400, error(3, "the product price must be greater than zero"))
    );
    let blank = app
        .json(Method::PUT, &path("rebrand"), json!({"name": " "}))
        .await;
    assert_eq!(blank, (400, error(3, "the product name cannot be blank")));
}

async fn malformed_json_is_a_400_with_the_error_body(backend: Backend) {
    let app = app(backend).await;
    for body in [r#"{"name": "#, r#"{"name": 42}"#, "[1, 2]"] {
        let response = app.send(Method::POST, "/api/stores", body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(
            (&error["code"], &error["details"]),
            (&json!(3), &json!([])),
            "{body}: {error}"
        );
    }
}

async fn the_grpc_service_serves_stores_and_products(backend: Backend) {
    let app = app(backend).await;
    let store = create_store(&app, "Store ABC").await;
    let product = add_product(&app, &store).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::stores_service_client::StoresServiceClient::new(channel);
    let found = client
        .get_store(pb::GetStoreRequest { id: store.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.store.unwrap().name, "Store ABC");
    let found = client
        .get_product(pb::GetProductRequest { id: product })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.product.unwrap().store_id, store);
    let missing = client
        .get_product(pb::GetProductRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (tonic::Code::NotFound, "product with that ID does not exist")
    );
    let invalid = client
        .create_store(pb::CreateStoreRequest {
            name: String::new(),
            location: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (invalid.code(), invalid.message()),
        (
            tonic::Code::InvalidArgument,
            "the store name cannot be blank"
        )
    );
}
