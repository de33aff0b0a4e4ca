//! `POST /api/search/orders` and `GET /api/search/orders/{id}`.

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use db::Db;
use host::{ApiError, Json};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::{
    access,
    queries::{self, Error, Filters, Order},
};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(paths(search_orders, order), tags((name = "Orders", description = "Search")))]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(db: Db) -> Router {
    let owned = Router::new()
        .route("/api/search/orders/{id}", get(order))
        .route_layer(axum::middleware::from_fn_with_state(
            access::Orders(db.clone()),
            host::auth::owned::<access::Orders>,
        ));
    Router::new()
        .route("/api/search/orders", post(search_orders))
        .merge(owned)
        .with_state(db)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        match error {
            Error::BadCursor => ApiError::invalid_argument(error.to_string()),
            Error::Database(cause) => ApiError::internal(&cause),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SearchItemJson)]
pub(crate) struct ItemJson {
    product_id: String,
    store_id: String,
    product_name: String,
    store_name: String,
    price: f64,
    /// int64, written as a string (protojson).
    quantity: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SearchOrderJson)]
pub(crate) struct OrderJson {
    order_id: String,
    customer_id: String,
    customer_name: String,
    items: Vec<ItemJson>,
    total: f64,
    status: String,
}

fn order_json(order: Order) -> OrderJson {
    let items = order
        .items
        .into_iter()
        .map(|i| ItemJson {
            product_id: i.product_id,
            store_id: i.store_id,
            product_name: i.product_name,
            store_name: i.store_name,
            price: i.price,
            quantity: i.quantity.to_string(),
        })
        .collect();
    OrderJson {
        order_id: order.order_id,
        customer_id: order.customer_id,
        customer_name: order.customer_name,
        items,
        total: order.total,
        status: order.status,
    }
}

#[derive(Serialize, Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct FiltersJson {
    #[serde(alias = "customer_id")]
    customer_id: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    after: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    before: Option<String>,
    #[serde(alias = "store_ids")]
    store_ids: Vec<String>,
    #[serde(alias = "product_ids")]
    product_ids: Vec<String>,
    #[serde(alias = "min_total")]
    min_total: f64,
    #[serde(alias = "max_total")]
    max_total: f64,
    status: String,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct SearchOrders {
    filters: FiltersJson,
    /// The `next` of the previous page (`<created µs>:<order id>`); empty for the first.
    #[schema(pattern = "^([+-]?[0-9]{1,18}:[^\\u0000-\\u001f\\u007f-\\u009f]*)?$")]
    next: String,
    limit: i64,
}

#[derive(Serialize, ToSchema)]
struct SearchReply {
    orders: Vec<OrderJson>,
    next: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SearchOrderReply)]
struct OrderReply {
    order: OrderJson,
}

fn instant(field: &str, text: Option<String>) -> Result<Option<i64>, ApiError> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.timestamp_micros()))
            .map_err(|_| {
                ApiError::invalid_argument(format!("filters.{field} must be an RFC 3339 timestamp"))
            }),
    }
}

#[utoipa::path(post, path = "/api/search/orders", tag = "Orders", operation_id = "searchOrders", summary = "Search for orders",
    request_body = Option<SearchOrders>, responses((status = 200, body = SearchReply), (status = 400, body = host::ErrorBody), (status = 403, body = host::ErrorBody)))]
async fn search_orders(
    State(db): State<Db>,
    caller: host::auth::Caller,
    Json(body): Json<SearchOrders>,
) -> Result<axum::Json<SearchReply>, ApiError> {
    let f = body.filters;
    let filters = Filters {
        after: instant("after", f.after)?,
        before: instant("before", f.before)?,
        customer_id: access::search(&caller, f.customer_id)?,
        store_ids: f.store_ids,
        product_ids: f.product_ids,
        min_total: f.min_total,
        max_total: f.max_total,
        status: f.status,
    };
    let limit = if body.limit <= 0 { 20 } else { body.limit };
    let (orders, next) = queries::search(&db, &filters, &body.next, limit).await?;
    Ok(axum::Json(SearchReply {
        orders: orders.into_iter().map(order_json).collect(),
        next,
    }))
}

#[utoipa::path(get, path = "/api/search/orders/{id}", tag = "Orders", operation_id = "searchGetOrder", summary = "Get an order",
    params(("id" = String, Path)), responses((status = 200, body = OrderReply), (status = 404, body = host::ErrorBody)))]
async fn order(State(db): State<Db>, Path(id): Path<String>) -> Response {
    match queries::find(&db, &id).await {
        Ok(Some(order)) => axum::Json(OrderReply {
            order: order_json(order),
        })
        .into_response(),
        Ok(None) => ApiError::not_found(access::NOT_FOUND).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}
