//! The book's REST routes under `/api/depot`, plus the bots' reads:
//! `GET /api/depot/shopping/{id}` and `GET /api/depot/shopping?status=available`.

use std::collections::BTreeMap;

use axum::handler::Handler as _;
use axum::{
    Router,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
    routing::{post, put},
};
use host::{ApiError, Empty, IdReply, Json, auth::Caller};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::{
    app::{App, Error, OrderItem},
    caches::Missing,
    domain::list::{self, ShoppingList, Status},
};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(
    paths(create_shopping_list, cancel_shopping_list, assign_shopping_list, complete_shopping_list, shopping_list, shopping_lists),
    tags((name = "ShoppingList", description = "Depot Operations"))
)]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route(
            "/api/depot/shopping",
            // Lists come from orders (the saga); only the mall itself makes one by hand.
            post(create_shopping_list.layer(host::auth::only(Caller::is_trusted)))
                .get(shopping_lists),
        )
        .route(
            "/api/depot/shopping/{id}",
            post(cancel_shopping_list).get(shopping_list),
        )
        .route("/api/depot/shopping/{id}/assign", put(assign_shopping_list))
        .route(
            "/api/depot/shopping/{id}/complete",
            put(complete_shopping_list),
        )
        // The depot is the bots' (and the mall's operators').
        .route_layer(host::auth::only(Caller::is_bot))
        .with_state(app)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        use list::Error as L;
        let message = error.to_string();
        match error {
            Error::List(L::BlankBot | L::BadQuantity | L::BlankOrder | L::NoItems) => {
                ApiError::invalid_argument(message)
            }
            Error::List(L::NotFound) | Error::Missing(Missing::Product | Missing::Store) => {
                ApiError::not_found(message)
            }
            Error::List(
                L::CannotCancel | L::CannotInitiate | L::CannotAssign | L::CannotComplete,
            ) => ApiError::failed_precondition(message),
            Error::Missing(Missing::Unavailable(status)) => ApiError::from_peer(&status, message),
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
struct LineJson {
    name: String,
    quantity: i32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StopJson {
    store_name: String,
    store_location: String,
    items: BTreeMap<String, LineJson>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShoppingListJson {
    id: String,
    order_id: String,
    stops: BTreeMap<String, StopJson>,
    assigned_bot_id: String,
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShoppingListReply {
    shopping_list: ShoppingListJson,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShoppingListsReply {
    shopping_lists: Vec<ShoppingListJson>,
}

fn list_json(list: ShoppingList) -> ShoppingListJson {
    let stops = list
        .stops
        .into_iter()
        .map(|(store, stop)| {
            let items = stop
                .items
                .into_iter()
                .map(|(product, line)| {
                    (
                        product,
                        LineJson {
                            name: line.product_name,
                            quantity: line.quantity,
                        },
                    )
                })
                .collect();
            (
                store,
                StopJson {
                    store_name: stop.store_name,
                    store_location: stop.store_location,
                    items,
                },
            )
        })
        .collect();
    ShoppingListJson {
        id: list.id,
        order_id: list.order_id,
        stops,
        assigned_bot_id: list.assigned_bot_id,
        status: list.status.as_str(),
    }
}

#[derive(Serialize, Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
#[schema(as = ShoppingItemJson)]
struct ItemJson {
    #[serde(alias = "product_id")]
    #[schema(required = true, min_length = 1)]
    product_id: String,
    #[serde(alias = "store_id")]
    #[schema(required = true, min_length = 1)]
    store_id: String,
    #[schema(required = true, minimum = 1)]
    quantity: i32,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct CreateShoppingList {
    #[serde(alias = "order_id")]
    #[schema(required = true, min_length = 1)]
    order_id: String,
    #[schema(required = true, min_items = 1)]
    items: Vec<ItemJson>,
}

#[utoipa::path(post, path = "/api/depot/shopping", tag = "ShoppingList", operation_id = "createShoppingList",
    summary = "Schedule shopping tasks for an order", request_body = CreateShoppingList,
    responses((status = 200, body = IdReply), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn create_shopping_list(
    State(app): State<App>,
    Json(body): Json<CreateShoppingList>,
) -> Reply<IdReply> {
    let items = body
        .items
        .into_iter()
        .map(|i| OrderItem {
            product_id: i.product_id,
            store_id: i.store_id,
            quantity: i.quantity,
        })
        .collect();
    let id = app.create(body.order_id, items).await?;
    Ok(axum::Json(IdReply { id }))
}

#[utoipa::path(post, path = "/api/depot/shopping/{id}", tag = "ShoppingList", operation_id = "cancelShoppingList",
    summary = "Cancel a shopping task", params(("id" = String, Path)),
    responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn cancel_shopping_list(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.change(&id, ShoppingList::cancel).await?;
    Ok(axum::Json(Empty {}))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct Assign {
    #[serde(alias = "bot_id")]
    #[schema(required = true, min_length = 1)]
    bot_id: String,
}

#[utoipa::path(put, path = "/api/depot/shopping/{id}/assign", tag = "ShoppingList", operation_id = "assignShoppingList",
    summary = "Assign a shopping list to a bot", params(("id" = String, Path)), request_body = Assign,
    responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn assign_shopping_list(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<Assign>,
) -> Reply<Empty> {
    app.change(&id, move |list| list.assign(body.bot_id).map(|()| None))
        .await?;
    Ok(axum::Json(Empty {}))
}

#[utoipa::path(put, path = "/api/depot/shopping/{id}/complete", tag = "ShoppingList", operation_id = "completeShoppingList",
    summary = "Complete a shopping task", params(("id" = String, Path)),
    responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn complete_shopping_list(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.change(&id, |list| list.complete().map(Some)).await?;
    Ok(axum::Json(Empty {}))
}

#[utoipa::path(get, path = "/api/depot/shopping/{id}", tag = "ShoppingList", operation_id = "getShoppingList",
    summary = "Get a shopping list", params(("id" = String, Path)),
    responses((status = 200, body = ShoppingListReply), (status = 404, body = host::ErrorBody)))]
async fn shopping_list(State(app): State<App>, Path(id): Path<String>) -> Reply<ShoppingListReply> {
    let list = app.list(&id).await?;
    Ok(axum::Json(ShoppingListReply {
        shopping_list: list_json(list),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Filter {
    /// `pending`, `available`, `assigned`, `completed` or `canceled`.
    #[param(pattern = "^(pending|available|assigned|completed|canceled)$")]
    status: String,
}

#[utoipa::path(get, path = "/api/depot/shopping", tag = "ShoppingList", operation_id = "getShoppingLists",
    summary = "Shopping lists in a status, oldest first (a bot's work queue)", params(Filter),
    responses((status = 200, body = ShoppingListsReply), (status = 400, body = host::ErrorBody)))]
async fn shopping_lists(
    State(app): State<App>,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let status = match filter
        .as_ref()
        .ok()
        .and_then(|Query(f)| Status::parse(&f.status))
    {
        Some(status) => status,
        None => {
            return ApiError::invalid_argument(
                "status must be pending, available, assigned, completed or canceled",
            )
            .into_response();
        }
    };
    match app.lists(status).await {
        Ok(lists) => axum::Json(ShoppingListsReply {
            shopping_lists: lists.into_iter().map(list_json).collect(),
        })
        .into_response(),
        Err(error) => error.into_response(),
    }
}
