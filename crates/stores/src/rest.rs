//! The book's REST routes under `/api/stores`, JSON as grpc-gateway writes it (lowerCamelCase,
//! every field present). Errors are mapped to the gateway's `{"code","message","details"}` here
//! and nowhere else.

use axum::{
    Router,
    extract::{Path, State},
    handler::Handler as _,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use host::{ApiError, Empty, IdReply, Json};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::{
    access,
    app::{App, Error},
    catalog, mall,
};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(
    paths(
        create_store, stores, participating_stores, store, enable_participation, disable_participation, rebrand_store,
        add_product, catalog, product, rebrand_product, increase_price, decrease_price, remove_product
    ),
    tags(
        (name = "Store", description = "Store Management"),
        (name = "Participation", description = "Store participation in the mall"),
        (name = "Product", description = "Store catalogs")
    )
)]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(app: App) -> Router {
    // Reading is anyone's; changing a store or a product is its owner's (access.rs).
    let store_owner = || {
        axum::middleware::from_fn_with_state(
            access::Stores(app.clone()),
            host::auth::owned::<access::Stores>,
        )
    };
    let product_owner = || {
        axum::middleware::from_fn_with_state(
            access::Products(app.clone()),
            host::auth::owned::<access::Products>,
        )
    };
    Router::new()
        .route(
            "/api/stores",
            post(create_store.layer(host::auth::only(access::may_open_store))).get(stores),
        )
        .route("/api/stores/participating", get(participating_stores))
        .route("/api/stores/{id}", get(store))
        .route(
            "/api/stores/{id}/participating",
            put(enable_participation)
                .delete(disable_participation)
                .route_layer(store_owner()),
        )
        .route(
            "/api/stores/{id}/rebrand",
            put(rebrand_store).route_layer(store_owner()),
        )
        .route(
            "/api/stores/{id}/products",
            post(add_product.layer(store_owner())).get(catalog),
        )
        .route(
            "/api/stores/products/{id}",
            get(product).delete(remove_product.layer(product_owner())),
        )
        .route(
            "/api/stores/products/{id}/rebrand",
            put(rebrand_product).route_layer(product_owner()),
        )
        .route(
            "/api/stores/products/{id}/increasePrice",
            put(increase_price).route_layer(product_owner()),
        )
        .route(
            "/api/stores/products/{id}/decreasePrice",
            put(decrease_price).route_layer(product_owner()),
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

type Reply<T> = Result<axum::Json<T>, Error>;

fn empty() -> Reply<Empty> {
    Ok(axum::Json(Empty {}))
}

#[derive(Serialize, ToSchema)]
struct StoreReply {
    store: StoreJson,
}

#[derive(Serialize, ToSchema)]
struct StoresReply {
    stores: Vec<StoreJson>,
}

#[derive(Serialize, ToSchema)]
struct ProductReply {
    product: ProductJson,
}

#[derive(Serialize, ToSchema)]
struct ProductsReply {
    products: Vec<ProductJson>,
}

#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
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

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct CreateStore {
    #[schema(required = true, min_length = 1)]
    name: String,
    #[schema(required = true, min_length = 1)]
    location: String,
}

#[utoipa::path(post, path = "/api/stores", tag = "Store", operation_id = "createStore", request_body = CreateStore, responses((status = 200, body = IdReply), (status = 400, body = host::ErrorBody)))]
async fn create_store(
    State(app): State<App>,
    caller: host::auth::Caller,
    Json(body): Json<CreateStore>,
) -> Reply<IdReply> {
    let id = app
        .create_store(caller.subject, body.name, body.location)
        .await?;
    Ok(axum::Json(IdReply { id }))
}

#[utoipa::path(put, path = "/api/stores/{id}/participating", tag = "Participation", operation_id = "enableParticipation", params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn enable_participation(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.enable_participation(&id).await?;
    empty()
}

#[utoipa::path(delete, path = "/api/stores/{id}/participating", tag = "Participation", operation_id = "disableParticipation", params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn disable_participation(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.disable_participation(&id).await?;
    empty()
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct Rebrand {
    #[schema(required = true, min_length = 1)]
    name: String,
    /// A product's; a store has none.
    description: String,
}

#[utoipa::path(put, path = "/api/stores/{id}/rebrand", tag = "Store", operation_id = "rebrandStore", params(("id" = String, Path)), request_body = Rebrand, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn rebrand_store(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<Rebrand>,
) -> Reply<Empty> {
    app.rebrand_store(&id, body.name).await?;
    empty()
}

#[utoipa::path(get, path = "/api/stores/{id}", tag = "Store", operation_id = "getStore", params(("id" = String, Path)), responses((status = 200, body = StoreReply), (status = 404, body = host::ErrorBody)))]
async fn store(State(app): State<App>, Path(id): Path<String>) -> Reply<StoreReply> {
    let store = StoreJson::from(app.store(&id).await?);
    Ok(axum::Json(StoreReply { store }))
}

#[utoipa::path(get, path = "/api/stores", tag = "Store", operation_id = "getStores", responses((status = 200, body = StoresReply)))]
async fn stores(State(app): State<App>) -> Reply<StoresReply> {
    let stores: Vec<StoreJson> = app
        .stores(false)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(axum::Json(StoresReply { stores }))
}

#[utoipa::path(get, path = "/api/stores/participating", tag = "Participation", operation_id = "getParticipatingStores", responses((status = 200, body = StoresReply)))]
async fn participating_stores(State(app): State<App>) -> Reply<StoresReply> {
    let stores: Vec<StoreJson> = app
        .stores(true)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(axum::Json(StoresReply { stores }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct AddProduct {
    #[schema(required = true, min_length = 1)]
    name: String,
    description: String,
    sku: String,
    #[schema(required = true, exclusive_minimum = 0, maximum = 1000000)]
    price: f64,
}

#[utoipa::path(post, path = "/api/stores/{id}/products", tag = "Product", operation_id = "addProduct", params(("id" = String, Path, description = "the store")), request_body = AddProduct, responses((status = 200, body = IdReply), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn add_product(
    State(app): State<App>,
    Path(store_id): Path<String>,
    Json(body): Json<AddProduct>,
) -> Reply<IdReply> {
    let id = app
        .add_product(store_id, body.name, body.description, body.sku, body.price)
        .await?;
    Ok(axum::Json(IdReply { id }))
}

#[utoipa::path(put, path = "/api/stores/products/{id}/rebrand", tag = "Product", operation_id = "rebrandProduct", params(("id" = String, Path)), request_body = Rebrand, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn rebrand_product(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<Rebrand>,
) -> Reply<Empty> {
    app.rebrand_product(&id, body.name, body.description)
        .await?;
    empty()
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct NewPrice {
    #[schema(required = true, exclusive_minimum = 0, maximum = 1000000)]
    price: f64,
}

#[utoipa::path(put, path = "/api/stores/products/{id}/increasePrice", tag = "Product", operation_id = "increaseProductPrice", params(("id" = String, Path)), request_body = NewPrice, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn increase_price(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<NewPrice>,
) -> Reply<Empty> {
    app.increase_price(&id, body.price).await?;
    empty()
}

#[utoipa::path(put, path = "/api/stores/products/{id}/decreasePrice", tag = "Product", operation_id = "decreaseProductPrice", params(("id" = String, Path)), request_body = NewPrice, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn decrease_price(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<NewPrice>,
) -> Reply<Empty> {
    app.decrease_price(&id, body.price).await?;
    empty()
}

#[utoipa::path(delete, path = "/api/stores/products/{id}", tag = "Product", operation_id = "removeProduct", params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 404, body = host::ErrorBody)))]
async fn remove_product(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.remove_product(&id).await?;
    empty()
}

#[utoipa::path(get, path = "/api/stores/products/{id}", tag = "Product", operation_id = "getProduct", params(("id" = String, Path)), responses((status = 200, body = ProductReply), (status = 404, body = host::ErrorBody)))]
async fn product(State(app): State<App>, Path(id): Path<String>) -> Reply<ProductReply> {
    let product = ProductJson::from(app.product(&id).await?);
    Ok(axum::Json(ProductReply { product }))
}

#[utoipa::path(get, path = "/api/stores/{id}/products", tag = "Product", operation_id = "getStoreProducts", params(("id" = String, Path, description = "the store")), responses((status = 200, body = ProductsReply), (status = 404, body = host::ErrorBody)))]
async fn catalog(State(app): State<App>, Path(store_id): Path<String>) -> Reply<ProductsReply> {
    let products: Vec<ProductJson> = app
        .catalog(&store_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(axum::Json(ProductsReply { products }))
}
