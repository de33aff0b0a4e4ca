//! The UI clients whose expectations the REST pacts record: what a kiosk screen (baskets) and
//! a store owner's screen (stores) need of the API, and nothing more. They are the consumer
//! side of the contract; the pact tests drive them against Pact's mock server.

use serde::Deserialize;
use serde_json::{Value, json};

/// A refusal from the API, as the grpc-gateway error body carries it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The gRPC code in the body.
    pub code: i64,
    /// What went wrong, in the API's words.
    pub message: String,
}

/// A failure to talk to the API at all, or a refusal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API refused the request.
    #[error(transparent)]
    Refused(#[from] ApiError),
    /// The request did not complete, or the answer was not what the API documents.
    #[error("the API could not be reached or answered nonsense: {0}")]
    Transport(#[from] reqwest::Error),
}

#[derive(Debug, Clone)]
struct Http {
    base: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: i64,
    message: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl Http {
    fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ClientError> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let error: ErrorBody = response.json().await?;
        Err(ApiError {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
        }
        .into())
    }
}

/// A line of a basket as the kiosk shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasketItem {
    /// The store selling it.
    pub store_id: String,
    /// The store's name.
    pub store_name: String,
    /// The product.
    pub product_id: String,
    /// The product's name.
    pub product_name: String,
    /// The price of one.
    pub product_price: f64,
    /// How many.
    pub quantity: i32,
}

/// A basket as the kiosk shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Basket {
    /// The basket (and later order) id.
    pub id: String,
    /// Its lines.
    pub items: Vec<BasketItem>,
}

#[derive(Deserialize)]
struct BasketReply {
    basket: Basket,
}

/// The kiosk's client of `/api/baskets`.
#[derive(Debug, Clone)]
pub struct BasketsClient(Http);

impl BasketsClient {
    /// A client of the API at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self(Http::new(base))
    }

    /// Starts a basket for a customer; its id.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn start(&self, customer_id: &str) -> Result<String, ClientError> {
        let body = json!({"customerId": customer_id});
        let created: Created = self
            .0
            .send(reqwest::Method::POST, "/api/baskets", Some(body))
            .await?;
        Ok(created.id)
    }

    /// The basket.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn get(&self, basket_id: &str) -> Result<Basket, ClientError> {
        let path = format!("/api/baskets/{basket_id}");
        let reply: BasketReply = self.0.send(reqwest::Method::GET, &path, None).await?;
        Ok(reply.basket)
    }

    /// Adds `quantity` of a product.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn add_item(
        &self,
        basket_id: &str,
        product_id: &str,
        quantity: i32,
    ) -> Result<(), ClientError> {
        let path = format!("/api/baskets/{basket_id}/addItem");
        let body = json!({"productId": product_id, "quantity": quantity});
        let _: Value = self.0.send(reqwest::Method::PUT, &path, Some(body)).await?;
        Ok(())
    }

    /// Checks the basket out with an authorized payment.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn checkout(&self, basket_id: &str, payment_id: &str) -> Result<(), ClientError> {
        let path = format!("/api/baskets/{basket_id}/checkout");
        let body = json!({"paymentId": payment_id});
        let _: Value = self.0.send(reqwest::Method::PUT, &path, Some(body)).await?;
        Ok(())
    }
}

/// A store as the owner's screen shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Store {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where it is in the mall.
    pub location: String,
    /// Whether it takes part in the mall's offers.
    pub participating: bool,
}

/// A product of a store's catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Its id.
    pub id: String,
    /// The store selling it.
    pub store_id: String,
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// The store's stock-keeping unit.
    pub sku: String,
    /// Its price.
    pub price: f64,
}

#[derive(Deserialize)]
struct StoreReply {
    store: Store,
}

#[derive(Deserialize)]
struct StoresReply {
    stores: Vec<Store>,
}

#[derive(Deserialize)]
struct ProductsReply {
    products: Vec<Product>,
}

/// The store owner's client of `/api/stores`.
#[derive(Debug, Clone)]
pub struct StoresClient(Http);

impl StoresClient {
    /// A client of the API at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self(Http::new(base))
    }

    /// Opens a store; its id.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn create_store(&self, name: &str, location: &str) -> Result<String, ClientError> {
        let body = json!({"name": name, "location": location});
        let created: Created = self
            .0
            .send(reqwest::Method::POST, "/api/stores", Some(body))
            .await?;
        Ok(created.id)
    }

    /// The store.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn store(&self, store_id: &str) -> Result<Store, ClientError> {
        let path = format!("/api/stores/{store_id}");
        let reply: StoreReply = self.0.send(reqwest::Method::GET, &path, None).await?;
        Ok(reply.store)
    }

    /// Every store of the mall.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn stores(&self) -> Result<Vec<Store>, ClientError> {
        let reply: StoresReply = self
            .0
            .send(reqwest::Method::GET, "/api/stores", None)
            .await?;
        Ok(reply.stores)
    }

    /// Adds a product to a store; its id.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn add_product(
        &self,
        store_id: &str,
        name: &str,
        description: &str,
        sku: &str,
        price: f64,
    ) -> Result<String, ClientError> {
        let path = format!("/api/stores/{store_id}/products");
        let body = json!({"name": name, "description": description, "sku": sku, "price": price});
        let created: Created = self
            .0
            .send(reqwest::Method::POST, &path, Some(body))
            .await?;
        Ok(created.id)
    }

    /// A store's catalog.
    ///
    /// # Errors
    /// The API's refusal, or a transport failure.
    pub async fn catalog(&self, store_id: &str) -> Result<Vec<Product>, ClientError> {
        let path = format!("/api/stores/{store_id}/products");
        let reply: ProductsReply = self.0.send(reqwest::Method::GET, &path, None).await?;
        Ok(reply.products)
    }
}
