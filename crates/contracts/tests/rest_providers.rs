//! The provider side of the REST pacts: the running mall (baskets and stores with the modules
//! they lean on) verified against the committed pacts of the kiosk and the store owner's UI,
//! on both backends. Provider states create what an interaction needs through the public API
//! and hand the ids to Pact, which puts them into the request.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use contracts::pacts;
use db::Backend;
use pact_models::provider_states::ProviderState;
use pact_verifier::callback_executors::ProviderStateExecutor;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Api, spawn_app, spawn_app_with};

db::backend_tests!(
    baskets_keeps_the_kiosks_pact,
    stores_keeps_the_owners_pact,
    baskets_keeps_the_kiosks_pact_with_tokens,
    stores_keeps_the_owners_pact_with_tokens,
);

/// Sets provider states up through the app's REST API.
struct States(Api);

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("States")
    }
}

impl States {
    async fn basket(&self, items: i32) -> HashMap<String, Value> {
        let app = &self.0;
        let mall = app.mall(100.0).await;
        let basket = app
            .create("/api/baskets", json!({"customerId": mall.customer}))
            .await;
        if items > 0 {
            let path = format!("/api/baskets/{basket}/addItem");
            let body = json!({"productId": mall.product, "quantity": items});
            let (status, reply) = app.json(Method::PUT, &path, body).await;
            assert_eq!(status, 200, "{reply}");
        }
        HashMap::from([
            ("basketId".to_owned(), json!(basket)),
            ("productId".to_owned(), json!(mall.product)),
            ("paymentId".to_owned(), json!(mall.payment)),
        ])
    }

    async fn store(&self) -> String {
        self.0
            .create(
                "/api/stores",
                json!({"name": "Waldorf Books", "location": "Level 1"}),
            )
            .await
    }

    /// A store whose catalog (a read model) already shows one product.
    async fn store_selling(&self) -> String {
        let store = self.store().await;
        let product = json!({"name": "Gherkin Book", "description": "Cucumbers, a lot", "sku": "BOOK-1", "price": 12.5});
        self.0
            .create(&format!("/api/stores/{store}/products"), product)
            .await;
        let catalog = format!("/api/stores/{store}/products");
        self.0
            .eventually(&catalog, "/products/0/name", "Gherkin Book")
            .await;
        store
    }
}

#[async_trait]
impl ProviderStateExecutor for States {
    async fn call(
        self: Arc<Self>,
        _interaction: Option<String>,
        state: &ProviderState,
        setup: bool,
        _client: Option<&reqwest::Client>,
    ) -> anyhow::Result<HashMap<String, Value>> {
        if !setup {
            return Ok(HashMap::new());
        }
        Ok(match state.name.as_str() {
            // Interactions without a state are set up with an unnamed one.
            "" => HashMap::new(),
            "a customer is registered" => {
                let customer = self
                    .0
                    .create(
                        "/api/customers",
                        json!({"name": "Customer ABC", "smsNumber": "555-555-1212"}),
                    )
                    .await;
                HashMap::from([("customerId".to_owned(), json!(customer))])
            }
            "a basket holds 2 of a product" => self.basket(2).await,
            "an open basket and a product" => self.basket(0).await,
            "a store exists" => HashMap::from([("storeId".to_owned(), json!(self.store().await))]),
            "a store sells a product" => {
                HashMap::from([("storeId".to_owned(), json!(self.store_selling().await))])
            }
            other => anyhow::bail!("no such provider state: {other:?}"),
        })
    }

    fn teardown(&self) -> bool {
        false
    }
}

/// Verifies `pact` against the whole mall: open on loopback, or requiring tokens (the pact's
/// requests then carry an admin's).
async fn verify(backend: Backend, provider: &str, pact: &str, tokens: bool) {
    let (app, headers) = if tokens {
        let token = testkit::tokens::token(testkit::tokens::Role::Admin, "pact");
        let app = spawn_app_with(&["all"], backend, |c| c.auth = testkit::tokens::config()).await;
        let api = app.bearer(&token);
        let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {token}"))]);
        (app, (api, headers))
    } else {
        let app = spawn_app(&["all"], backend).await;
        let api = app.api.clone();
        (app, (api, HashMap::new()))
    };
    let (api, headers) = headers;
    let info = pacts::provider(provider, Some(app.http.port()), None);
    pacts::verify_with(info, &[pact], Arc::new(States(api)), headers).await;
}

async fn baskets_keeps_the_kiosks_pact(backend: Backend) {
    verify(backend, "baskets", "baskets-ui-baskets.json", false).await;
}

async fn stores_keeps_the_owners_pact(backend: Backend) {
    verify(backend, "stores", "stores-ui-stores.json", false).await;
}

async fn baskets_keeps_the_kiosks_pact_with_tokens(backend: Backend) {
    verify(backend, "baskets", "baskets-ui-baskets.json", true).await;
}

async fn stores_keeps_the_owners_pact_with_tokens(backend: Backend) {
    verify(backend, "stores", "stores-ui-stores.json", true).await;
}
