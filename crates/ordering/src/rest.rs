//! The book's REST routes under `/api/ordering`.

use axum::{
    Router,
    extract::{Path, State},
    handler::Handler as _,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use host::{ApiError, Empty, IdReply, Json};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::{
    access,
    app::{App, Error},
    domain::order::{self, Item, Order},
};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(paths(create_order, order, cancel_order), tags((name = "Order", description = "Order Processing")))]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(app: App) -> Router {
    let owned = Router::new()
        .route("/api/ordering/{id}", get(order).delete(cancel_order))
        .route_layer(axum::middleware::from_fn_with_state(
            access::Orders(app.clone()),
            host::auth::owned::<access::Orders>,
        ));
    Router::new()
        .route(
            "/api/ordering",
            post(create_order.layer(host::auth::only(host::auth::Caller::is_trusted))),
        )
        .merge(owned)
        .with_state(app)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        use order::Error as O;
        let message = error.to_string();
        match error {
            Error::Order(
                O::NoItems | O::BlankCustomer | O::BlankPayment | O::BadItem | O::TotalOutOfRange,
            ) => ApiError::invalid_argument(message),
            Error::Order(O::NotFound) => ApiError::not_found(message),
            Error::Order(O::AlreadyExists) => ApiError::new(tonic::Code::AlreadyExists, message),
            Error::Order(
                O::CannotCancel
                | O::CannotReject
                | O::CannotApprove
                | O::CannotReady
                | O::CannotComplete,
            ) => ApiError::failed_precondition(message),
            Error::Conflict => ApiError::conflict(message),
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

#[derive(Serialize, Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct ItemJson {
    #[serde(alias = "store_id")]
    store_id: String,
    #[serde(alias = "product_id")]
    product_id: String,
    #[serde(alias = "store_name")]
    store_name: String,
    #[serde(alias = "product_name")]
    product_name: String,
    #[schema(minimum = 0, maximum = 1000000)]
    price: f64,
    #[schema(required = true, minimum = 1, maximum = 10000)]
    quantity: i32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrderJson {
    id: String,
    customer_id: String,
    payment_id: String,
    items: Vec<ItemJson>,
    status: &'static str,
    shopping_id: String,
    invoice_id: String,
}

#[derive(Serialize, ToSchema)]
struct OrderReply {
    order: OrderJson,
}

fn order_json(id: String, order: Order) -> OrderJson {
    let items = order
        .items
        .into_iter()
        .map(|item| ItemJson {
            store_id: item.store_id,
            product_id: item.product_id,
            store_name: item.store_name,
            product_name: item.product_name,
            price: item.price,
            quantity: item.quantity,
        })
        .collect();
    OrderJson {
        id,
        customer_id: order.customer_id,
        payment_id: order.payment_id,
        items,
        status: order.status.as_str(),
        shopping_id: order.shopping_id,
        invoice_id: order.invoice_id,
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct CreateOrder {
    #[schema(required = true, min_items = 1)]
    items: Vec<ItemJson>,
    #[serde(alias = "customer_id")]
    #[schema(required = true, min_length = 1)]
    customer_id: String,
    #[serde(alias = "payment_id")]
    #[schema(required = true, min_length = 1)]
    payment_id: String,
}

#[utoipa::path(post, path = "/api/ordering", tag = "Order", operation_id = "createOrder", summary = "Start a new order",
    request_body = CreateOrder, responses((status = 200, body = IdReply), (status = 400, body = host::ErrorBody)))]
async fn create_order(State(app): State<App>, Json(body): Json<CreateOrder>) -> Reply<IdReply> {
    let items = body
        .items
        .into_iter()
        .map(|item| Item {
            product_id: item.product_id,
            store_id: item.store_id,
            store_name: item.store_name,
            product_name: item.product_name,
            price: item.price,
            quantity: item.quantity,
        })
        .collect();
    let id = app.create(body.customer_id, body.payment_id, items).await?;
    Ok(axum::Json(IdReply { id }))
}

#[utoipa::path(get, path = "/api/ordering/{id}", tag = "Order", operation_id = "getOrder", summary = "Get an order",
    params(("id" = String, Path)), responses((status = 200, body = OrderReply), (status = 404, body = host::ErrorBody)))]
async fn order(State(app): State<App>, Path(id): Path<String>) -> Reply<OrderReply> {
    let order = app.order(&id).await?;
    Ok(axum::Json(OrderReply {
        order: order_json(id, order),
    }))
}

#[utoipa::path(delete, path = "/api/ordering/{id}", tag = "Order", operation_id = "cancelOrder", summary = "Cancel an order",
    params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn cancel_order(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.execute(&id, order::Command::Cancel).await?;
    Ok(axum::Json(Empty {}))
}
