//! `GET /api/notifications?customerId=`: what a customer was told, newest first.

use axum::{
    Router,
    extract::{Query, State},
    response::{IntoResponse, Response},
    routing::get,
};
use db::{Db, Row as _};
use host::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(paths(notifications), tags((name = "Notification", description = "Notifications")))]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(db: Db) -> Router {
    Router::new()
        .route("/api/notifications", get(notifications))
        // Notifications are customers' (and the mall's operators'); a customer's own only.
        .route_layer(host::auth::only(|caller| {
            caller.may_act_as(host::auth::Role::Customer)
        }))
        .with_state(db)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NotificationJson {
    id: String,
    customer_id: String,
    order_id: String,
    /// `order_created`, `order_ready`, `order_canceled` or `sms_changed`.
    kind: String,
    sms_number: String,
    text: String,
    /// µs since the epoch.
    created_at: i64,
}

#[derive(Serialize, ToSchema)]
struct NotificationsReply {
    notifications: Vec<NotificationJson>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct Filter {
    /// The customer.
    #[param(required = true, min_length = 1)]
    customer_id: Option<String>,
}

#[utoipa::path(get, path = "/api/notifications", tag = "Notification", operation_id = "getNotifications", summary = "A customer's notifications",
    params(Filter), responses((status = 200, body = NotificationsReply), (status = 400, body = host::ErrorBody), (status = 403, body = host::ErrorBody)))]
async fn notifications(
    State(db): State<Db>,
    caller: host::auth::Caller,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(customer_id) = filter
        .ok()
        .and_then(|Query(f)| f.customer_id)
        .filter(|c| !c.is_empty())
    else {
        return ApiError::invalid_argument("customerId is required").into_response();
    };
    // A customer reads its own (the answer is the same whether the other one exists or not).
    if let Err(refused) = caller.require(caller.is_customer(&customer_id)) {
        return refused.into_response();
    }
    let rows = sqlx::query(
        "SELECT id, customer_id, order_id, kind, sms_number, text, created_at FROM notifications.notifications
         WHERE customer_id = $1 ORDER BY created_at DESC, id LIMIT 100",
    )
    .bind(customer_id)
    .fetch_all(db.pool())
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => return ApiError::internal(&error).into_response(),
    };
    let notifications: Result<Vec<NotificationJson>, sqlx::Error> = rows
        .iter()
        .map(|row| {
            Ok(NotificationJson {
                id: row.try_get(0)?,
                customer_id: row.try_get(1)?,
                order_id: row.try_get(2)?,
                kind: row.try_get(3)?,
                sms_number: row.try_get(4)?,
                text: row.try_get(5)?,
                created_at: row.try_get(6)?,
            })
        })
        .collect();
    match notifications {
        Ok(notifications) => axum::Json(NotificationsReply { notifications }).into_response(),
        Err(error) => ApiError::internal(&error).into_response(),
    }
}
