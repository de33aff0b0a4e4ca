//! The book's REST routes under `/api/baskets`.

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{post, put},
};
use copies::Missing;
use host::{ApiError, Empty, IdReply, Json};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::{
    access,
    app::{App, Error},
    domain::basket::{self, Basket},
};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(
    paths(start_basket, basket, cancel_basket, checkout_basket, add_item, remove_item),
    tags((name = "Basket", description = "Shopping Baskets"), (name = "Item", description = "Basket items"))
)]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(app: App) -> Router {
    let owned = Router::new()
        .route(
            "/api/baskets/{id}",
            axum::routing::get(basket).delete(cancel_basket),
        )
        .route("/api/baskets/{id}/checkout", put(checkout_basket))
        .route("/api/baskets/{id}/addItem", put(add_item))
        .route("/api/baskets/{id}/removeItem", put(remove_item))
        .route_layer(axum::middleware::from_fn_with_state(
            access::Baskets(app.clone()),
            host::auth::owned::<access::Baskets>,
        ));
    Router::new()
        .route("/api/baskets", post(start_basket))
        .merge(owned)
        .with_state(app)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        use basket::Error as B;
        let message = error.to_string();
        match error {
            Error::Basket(B::BlankCustomer | B::BlankPayment | B::NegativeQuantity) => {
                ApiError::invalid_argument(message)
            }
            Error::Basket(B::NotFound)
            | Error::UnknownCustomer
            | Error::UnknownPayment
            | Error::Missing(Missing::NotFound(_)) => ApiError::not_found(message),
            Error::Basket(
                B::NotOpen | B::CannotCancel | B::NoItems | B::NotThatMany | B::TooMany,
            )
            | Error::ForeignPayment => ApiError::failed_precondition(message),
            Error::Missing(Missing::Unavailable { status, .. }) | Error::Unavailable(_, status) => {
                ApiError::from_peer(&status, message)
            }
            Error::Conflict => ApiError::conflict(message),
            Error::Missing(Missing::Database(cause)) => ApiError::internal(&cause),
            Error::Unexpected(cause) => ApiError::internal(cause.as_ref()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

type Reply<T> = Result<axum::Json<T>, Error>;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BasketItemJson)]
struct ItemJson {
    store_id: String,
    product_id: String,
    store_name: String,
    product_name: String,
    product_price: f64,
    quantity: i32,
}

#[derive(Serialize, ToSchema)]
struct BasketJson {
    id: String,
    items: Vec<ItemJson>,
}

#[derive(Serialize, ToSchema)]
struct BasketReply {
    basket: BasketJson,
}

fn basket_json(id: String, basket: &Basket) -> BasketJson {
    let items = basket
        .items()
        .map(|item| ItemJson {
            store_id: item.store_id.clone(),
            product_id: item.product_id.clone(),
            store_name: item.store_name.clone(),
            product_name: item.product_name.clone(),
            product_price: item.price,
            quantity: item.quantity,
        })
        .collect();
    BasketJson { id, items }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct StartBasket {
    #[serde(alias = "customer_id")]
    #[schema(required = true, min_length = 1)]
    customer_id: String,
}

#[utoipa::path(post, path = "/api/baskets", tag = "Basket", operation_id = "startBasket", request_body = StartBasket,
    responses((status = 200, body = IdReply), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn start_basket(
    State(app): State<App>,
    caller: host::auth::Caller,
    Json(body): Json<StartBasket>,
) -> Result<axum::Json<IdReply>, ApiError> {
    access::start(&caller, &body.customer_id)?;
    let id = app.start(body.customer_id).await?;
    Ok(axum::Json(IdReply { id }))
}

#[utoipa::path(get, path = "/api/baskets/{id}", tag = "Basket", operation_id = "getBasket", params(("id" = String, Path)),
    responses((status = 200, body = BasketReply), (status = 404, body = host::ErrorBody)))]
async fn basket(State(app): State<App>, Path(id): Path<String>) -> Reply<BasketReply> {
    let basket = app.basket(&id).await?;
    Ok(axum::Json(BasketReply {
        basket: basket_json(id, &basket),
    }))
}

#[utoipa::path(delete, path = "/api/baskets/{id}", tag = "Basket", operation_id = "cancelBasket", params(("id" = String, Path)),
    responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn cancel_basket(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.cancel(&id).await?;
    Ok(axum::Json(Empty {}))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct Checkout {
    #[serde(alias = "payment_id")]
    #[schema(required = true, min_length = 1)]
    payment_id: String,
}

#[utoipa::path(put, path = "/api/baskets/{id}/checkout", tag = "Basket", operation_id = "checkoutBasket", params(("id" = String, Path)),
    request_body = Checkout, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn checkout_basket(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<Checkout>,
) -> Reply<Empty> {
    app.checkout(&id, body.payment_id).await?;
    Ok(axum::Json(Empty {}))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct ItemChange {
    #[serde(alias = "product_id")]
    #[schema(required = true, min_length = 1)]
    product_id: String,
    #[schema(minimum = 0, maximum = 10000)]
    quantity: i32,
}

#[utoipa::path(put, path = "/api/baskets/{id}/addItem", tag = "Item", operation_id = "addItem", params(("id" = String, Path)),
    request_body = ItemChange, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn add_item(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<ItemChange>,
) -> Reply<Empty> {
    app.add_item(&id, &body.product_id, body.quantity).await?;
    Ok(axum::Json(Empty {}))
}

#[utoipa::path(put, path = "/api/baskets/{id}/removeItem", tag = "Item", operation_id = "removeItem", params(("id" = String, Path)),
    request_body = ItemChange, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn remove_item(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<ItemChange>,
) -> Reply<Empty> {
    app.remove_item(&id, body.product_id, body.quantity).await?;
    Ok(axum::Json(Empty {}))
}
