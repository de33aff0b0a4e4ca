//! The consumer side of the REST pacts: the kiosk's baskets client and the store owner's stores
//! client, each driven against Pact's mock server, which records what they send and need back.
//! The pacts they write must equal the committed `pacts/*.json` (see `contracts::pacts`).

use contracts::{
    clients::{ApiError, BasketsClient, ClientError, StoresClient},
    pacts,
};
use pact_consumer::{builders::InteractionBuilder, prelude::*};
use pact_models::{generators::Generator, prelude::DataType};
use serde_json::json;

/// A request body value the provider fills in from its state (`${name}`).
fn from_state(name: &str) -> Generator {
    Generator::ProviderStateGenerator(format!("${{{name}}}"), Some(DataType::STRING))
}

/// The grpc-gateway error body the API answers with.
fn refusal(mut i: InteractionBuilder, status: u16, code: i64, message: &str) -> InteractionBuilder {
    i.response
        .status(status)
        .content_type("application/json")
        .json_body(json!({"code": code, "message": message, "details": []}));
    i
}

fn refused(result: Result<impl std::fmt::Debug, ClientError>, status: u16, message: &str) {
    match result {
        Err(ClientError::Refused(ApiError {
            status: actual,
            message: said,
            ..
        })) => assert_eq!((actual, said.as_str()), (status, message)),
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_kiosk_needs_these_basket_routes() {
    pacts::prepare();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut pact = PactBuilder::new_v4("baskets-ui", "baskets");
    pact.with_output_dir(scratch.path())
        .interaction("start a basket", "", |mut i| {
            i.given("a customer is registered");
            i.request
                .post()
                .path("/api/baskets")
                .json_body(json!({"customerId": "customer-1"}))
                .body_generator("$.customerId", from_state("customerId"));
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json_pattern!({"id": like!("basket-1")}));
            i
        })
        .interaction("start a basket for an unknown customer", "", |mut i| {
            i.request
                .post()
                .path("/api/baskets")
                .json_body(json!({"customerId": "no-such-customer"}));
            refusal(i, 404, 5, "customer with that ID does not exist")
        })
        .interaction("get a basket holding an item", "", |mut i| {
            i.given("a basket holds 2 of a product");
            i.request
                .get()
                .path_from_provider_state("/api/baskets/${basketId}", "/api/baskets/basket-1");
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json_pattern!({"basket": {
                    "id": like!("basket-1"),
                    "items": each_like!({
                        "storeId": like!("store-1"),
                        "storeName": like!("Store ABC"),
                        "productId": like!("product-1"),
                        "productName": like!("Product ABC"),
                        "productPrice": like!(9.99),
                        "quantity": like!(2),
                    }),
                }}));
            i
        })
        .interaction("get an unknown basket", "", |mut i| {
            i.request.get().path("/api/baskets/no-such-basket");
            refusal(i, 404, 5, "basket with that ID does not exist")
        })
        .interaction("add an item", "", |mut i| {
            i.given("an open basket and a product");
            i.request
                .put()
                .path_from_provider_state(
                    "/api/baskets/${basketId}/addItem",
                    "/api/baskets/basket-1/addItem",
                )
                .json_body(json!({"productId": "product-1", "quantity": 2}))
                .body_generator("$.productId", from_state("productId"));
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json!({}));
            i
        })
        .interaction("add an unknown product", "", |mut i| {
            i.given("an open basket and a product");
            i.request
                .put()
                .path_from_provider_state(
                    "/api/baskets/${basketId}/addItem",
                    "/api/baskets/basket-1/addItem",
                )
                .json_body(json!({"productId": "no-such-product", "quantity": 1}));
            refusal(
                i,
                404,
                5,
                "product fallback failed: product was not located",
            )
        })
        .interaction("check out a basket", "", |mut i| {
            i.given("a basket holds 2 of a product");
            i.request
                .put()
                .path_from_provider_state(
                    "/api/baskets/${basketId}/checkout",
                    "/api/baskets/basket-1/checkout",
                )
                .json_body(json!({"paymentId": "payment-1"}))
                .body_generator("$.paymentId", from_state("paymentId"));
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json!({}));
            i
        })
        .interaction("check out an empty basket", "", |mut i| {
            i.given("an open basket and a product");
            i.request
                .put()
                .path_from_provider_state(
                    "/api/baskets/${basketId}/checkout",
                    "/api/baskets/basket-2/checkout",
                )
                .json_body(json!({"paymentId": "payment-1"}))
                .body_generator("$.paymentId", from_state("paymentId"));
            refusal(i, 400, 9, "the basket has no items")
        });
    {
        let server = pact.start_mock_server(None, None);
        let kiosk = BasketsClient::new(server.url().as_str());
        assert_eq!(kiosk.start("customer-1").await.unwrap(), "basket-1");
        refused(
            kiosk.start("no-such-customer").await,
            404,
            "customer with that ID does not exist",
        );
        let basket = kiosk.get("basket-1").await.unwrap();
        assert_eq!(basket.items[0].product_name, "Product ABC");
        assert_eq!(basket.items[0].quantity, 2);
        refused(
            kiosk.get("no-such-basket").await,
            404,
            "basket with that ID does not exist",
        );
        kiosk.add_item("basket-1", "product-1", 2).await.unwrap();
        refused(
            kiosk.add_item("basket-1", "no-such-product", 1).await,
            404,
            "product fallback failed: product was not located",
        );
        kiosk.checkout("basket-1", "payment-1").await.unwrap();
        refused(
            kiosk.checkout("basket-2", "payment-1").await,
            400,
            "the basket has no items",
        );
    }
    pacts::check(scratch.path(), "baskets-ui-baskets.json");
}

/// A store as the owner's screen reads it.
fn store() -> JsonPattern {
    json_pattern!({
        "id": like!("store-1"),
        "name": like!("Waldorf Books"),
        "location": like!("Level 1"),
        "participating": like!(false),
    })
}

/// A product as the owner's screen reads it.
fn product() -> JsonPattern {
    json_pattern!({
        "id": like!("product-1"),
        "storeId": like!("store-1"),
        "name": like!("Gherkin Book"),
        "description": like!("Cucumbers, a lot"),
        "sku": like!("BOOK-1"),
        "price": like!(12.5),
    })
}

#[tokio::test]
async fn the_store_owner_needs_these_store_routes() {
    pacts::prepare();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut pact = PactBuilder::new_v4("stores-ui", "stores");
    pact.with_output_dir(scratch.path())
        .interaction("create a store", "", |mut i| {
            i.request
                .post()
                .path("/api/stores")
                .json_body(json!({"name": "Waldorf Books", "location": "Level 1"}));
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json_pattern!({"id": like!("store-1")}));
            i
        })
        .interaction("create a store without a name", "", |mut i| {
            i.request
                .post()
                .path("/api/stores")
                .json_body(json!({"name": "", "location": "Level 1"}));
            refusal(i, 400, 3, "the store name cannot be blank")
        })
        .interaction("get a store", "", |mut i| {
            i.given("a store exists");
            i.request
                .get()
                .path_from_provider_state("/api/stores/${storeId}", "/api/stores/store-1");
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json_pattern!({"store": store()}));
            i
        })
        .interaction("get an unknown store", "", |mut i| {
            i.request.get().path("/api/stores/no-such-store");
            refusal(i, 404, 5, "store with that ID does not exist")
        })
        .interaction("list the stores", "", |mut i| {
            i.given("a store exists");
            i.request.get().path("/api/stores");
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json_pattern!({"stores": each_like!(store())}));
            i
        })
        .interaction("add a product", "", |mut i| {
            i.given("a store exists");
            i.request
                .post()
                .path_from_provider_state(
                    "/api/stores/${storeId}/products",
                    "/api/stores/store-1/products",
                )
                .json_body(json!({"name": "Gherkin Book", "description": "Cucumbers, a lot", "sku": "BOOK-1", "price": 12.5}));
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json_pattern!({"id": like!("product-1")}));
            i
        })
        .interaction("get a store's catalog", "", |mut i| {
            i.given("a store sells a product");
            i.request.get().path_from_provider_state(
                "/api/stores/${storeId}/products",
                "/api/stores/store-1/products",
            );
            i.response
                .ok()
                .content_type("application/json")
                .json_body(json_pattern!({"products": each_like!(product())}));
            i
        });
    {
        let server = pact.start_mock_server(None, None);
        let owner = StoresClient::new(server.url().as_str());
        assert_eq!(
            owner
                .create_store("Waldorf Books", "Level 1")
                .await
                .unwrap(),
            "store-1"
        );
        refused(
            owner.create_store("", "Level 1").await,
            400,
            "the store name cannot be blank",
        );
        assert_eq!(owner.store("store-1").await.unwrap().name, "Waldorf Books");
        refused(
            owner.store("no-such-store").await,
            404,
            "store with that ID does not exist",
        );
        assert_eq!(owner.stores().await.unwrap()[0].location, "Level 1");
        let id = owner
            .add_product(
                "store-1",
                "Gherkin Book",
                "Cucumbers, a lot",
                "BOOK-1",
                12.5,
            )
            .await
            .unwrap();
        assert_eq!(id, "product-1");
        let catalog = owner.catalog("store-1").await.unwrap();
        assert_eq!(catalog[0].price, 12.5);
    }
    pacts::check(scratch.path(), "stores-ui-stores.json");
}
