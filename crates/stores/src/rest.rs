//! The book's REST routes under `/api/stores`, JSON as grpc-gateway writes it (lowerCamelCase,
//! every field present). Errors are mapped to the gateway's `{"code","message","details"}` here
//! and nowhere else.

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use host::{ApiError, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    app::{App, Error},
    catalog, mall,
};

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/api/stores", post(create_store).get(stores))
        .route("/api/stores/participating", get(participating_stores))
        .route("/api/stores/{id}", get(store))
        .route(
            "/api/stores/{id}/participating",
            put(enable_participation).delete(disable_participation),
        )
        .route("/api/stores/{id}/rebrand", put(rebrand_store))
        .route("/api/stores/{id}/products", post(add_product).get(catalog))
        .route(
            "/api/stores/products/{id}",
            get(product).delete(remove_product),
        )
        .route("/api/stores/products/{id}/rebrand", put(rebrand_product))
        .route(
            "/api/stores/products/{id}/increasePrice",
            put(increase_price),
        )
        .route(
            "/api/stores/products/{id}/decreasePrice",
            put(decrease_price),
        )
        .with_state(app)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        use crate::domain::{product, store};
        let message = error.to_string();
        match error {
            Error::Invalid(_) | Error::InvalidProduct(_) => ApiError::invalid_argument(message),
            Error::Store(store::Error::NotFound) | Error::Product(product::Error::NotFound) => {
                ApiError::not_found(message)
            }
            Error::Store(store::Error::AlreadyExists)
            | Error::Product(product::Error::AlreadyExists) => {
                ApiError::new(tonic::Code::AlreadyExists, message)
            }
            Error::Store(
                store::Error::AlreadyParticipating | store::Error::AlreadyNotParticipating,
            )
            | Error::Product(product::Error::WouldDecrease | product::Error::WouldIncrease) => {
                ApiError::failed_precondition(message)
            }
            Error::Conflict(_) => ApiError::conflict(message),
            Error::Unexpected(cause) => ApiError::internal(cause.as_ref()),
        }
    }
}

type Reply = Result<axum::Json<Value>, Error>;

fn empty() -> Reply {
    Ok(axum::Json(json!({})))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreJson {
    id: String,
    name: String,
    location: String,
    participating: bool,
}

impl From<mall::Store> for StoreJson {
    fn from(store: mall::Store) -> StoreJson {
        StoreJson {
            id: store.id,
            name: store.name,
            location: store.location,
            participating: store.participating,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductJson {
    id: String,
    store_id: String,
    name: String,
    description: String,
    sku: String,
    price: f64,
}

impl From<catalog::Product> for ProductJson {
    fn from(p: catalog::Product) -> ProductJson {
        ProductJson {
            id: p.id,
            store_id: p.store_id,
            name: p.name,
            description: p.description,
            sku: p.sku,
            price: p.price,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateStore {
    name: String,
    location: String,
}

async fn create_store(State(app): State<App>, Json(body): Json<CreateStore>) -> Reply {
    let id = app.create_store(body.name, body.location).await?;
    Ok(axum::Json(json!({ "id": id })))
}

async fn enable_participation(State(app): State<App>, Path(id): Path<String>) -> Reply {
    app.enable_participation(&id).await?;
    empty()
}

async fn disable_participation(State(app): State<App>, Path(id): Path<String>) -> Reply {
    app.disable_participation(&id).await?;
    empty()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Rebrand {
    name: String,
    description: String,
}

async fn rebrand_store(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<Rebrand>,
) -> Reply {
    app.rebrand_store(&id, body.name).await?;
    empty()
}

async fn store(State(app): State<App>, Path(id): Path<String>) -> Reply {
    let store = StoreJson::from(app.store(&id).await?);
    Ok(axum::Json(json!({ "store": store })))
}

async fn stores(State(app): State<App>) -> Reply {
    let stores: Vec<StoreJson> = app
        .stores(false)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(axum::Json(json!({ "stores": stores })))
}

async fn participating_stores(State(app): State<App>) -> Reply {
    let stores: Vec<StoreJson> = app
        .stores(true)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(axum::Json(json!({ "stores": stores })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AddProduct {
    name: String,
    description: String,
    sku: String,
    price: f64,
}

async fn add_product(
    State(app): State<App>,
    Path(store_id): Path<String>,
    Json(body): Json<AddProduct>,
) -> Reply {
    let id = app
        .add_product(store_id, body.name, body.description, body.sku, body.price)
        .await?;
    Ok(axum::Json(json!({ "id": id })))
}

async fn rebrand_product(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<Rebrand>,
) -> Reply {
    app.rebrand_product(&id, body.name, body.description)
        .await?;
    empty()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewPrice {
    price: f64,
}

async fn increase_price(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<NewPrice>,
) -> Reply {
    app.increase_price(&id, body.price).await?;
    empty()
}

async fn decrease_price(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<NewPrice>,
) -> Reply {
    app.decrease_price(&id, body.price).await?;
    empty()
}

async fn remove_product(State(app): State<App>, Path(id): Path<String>) -> Reply {
    app.remove_product(&id).await?;
    empty()
}

async fn product(State(app): State<App>, Path(id): Path<String>) -> Reply {
    let product = ProductJson::from(app.product(&id).await?);
    Ok(axum::Json(json!({ "product": product })))
}

async fn catalog(State(app): State<App>, Path(store_id): Path<String>) -> Reply {
    let products: Vec<ProductJson> = app
        .catalog(&store_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(axum::Json(json!({ "products": products })))
}
