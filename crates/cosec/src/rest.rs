//! `GET /api/cosec/sagas/{orderId}`: one create-order saga, its state and history.

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::get,
};
use host::ApiError;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::create_order::CreateOrder;

type Orchestrator = saga::Orchestrator<CreateOrder>;

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(paths(saga_of_order, stuck_sagas), tags((name = "Saga", description = "Create-order sagas")))]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(orchestrator: Orchestrator) -> Router {
    Router::new()
        .route("/api/cosec/sagas/{id}", get(saga_of_order))
        .route("/api/cosec/stuck-sagas", get(stuck_sagas))
        // Sagas are the operator's view of every customer's orders.
        .route_layer(host::auth::only(host::auth::Caller::is_admin))
        .with_state(orchestrator)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EntryJson {
    at: i64,
    step: i32,
    compensating: bool,
    event: String,
    message: String,
    detail: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SagaJson {
    id: String,
    name: &'static str,
    /// `running`, `completed`, `compensated` or `compensation_failed`.
    status: &'static str,
    step: i32,
    compensating: bool,
    done: bool,
    shopping_id: String,
    history: Vec<EntryJson>,
}

#[derive(Serialize, ToSchema)]
struct SagaReply {
    saga: SagaJson,
}

#[utoipa::path(get, path = "/api/cosec/sagas/{id}", tag = "Saga", operation_id = "getSaga", summary = "The create-order saga of an order",
    params(("id" = String, Path, description = "the order id")), responses((status = 200, body = SagaReply), (status = 404, body = host::ErrorBody)))]
async fn saga_of_order(
    State(orchestrator): State<Orchestrator>,
    Path(id): Path<String>,
) -> Response {
    match orchestrator.find(&id).await {
        Ok(Some(record)) => axum::Json(SagaReply {
            saga: saga_json(record),
        })
        .into_response(),
        Ok(None) => ApiError::not_found("saga with that ID does not exist").into_response(),
        Err(error) => ApiError::internal(&error).into_response(),
    }
}

/// Stuck sagas shown at most: a view (`mallbots saga list --stuck` has them all).
const STUCK_SHOWN: usize = 100;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct Stuck {
    /// A running saga counts as stuck once its step has waited this long (default 30).
    #[param(minimum = 1, maximum = 86400)]
    waiting_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
struct StuckReply {
    /// Oldest first, at most 100.
    sagas: Vec<SagaJson>,
}

#[utoipa::path(get, path = "/api/cosec/stuck-sagas", tag = "Saga", operation_id = "getStuckSagas",
    summary = "Sagas parked after failed compensations, past their deadline, or waiting on a step",
    params(Stuck), responses((status = 200, body = StuckReply), (status = 400, body = host::ErrorBody)))]
async fn stuck_sagas(
    State(orchestrator): State<Orchestrator>,
    stuck: Result<axum::extract::Query<Stuck>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let waiting = stuck.map(|axum::extract::Query(stuck)| stuck.waiting_seconds.unwrap_or(30));
    let Some(waiting) = waiting.ok().filter(|w| (1..=86_400).contains(w)) else {
        return ApiError::invalid_argument("waitingSeconds must be between 1 and 86400")
            .into_response();
    };
    match orchestrator
        .list(Some(std::time::Duration::from_secs(waiting)))
        .await
    {
        Ok(records) => axum::Json(StuckReply {
            sagas: records
                .into_iter()
                .take(STUCK_SHOWN)
                .map(saga_json)
                .collect(),
        })
        .into_response(),
        Err(error) => ApiError::internal(&error).into_response(),
    }
}

/// An instance as the API (and `mallbots saga`) shows it.
pub(crate) fn saga_json(record: saga::Record<CreateOrder>) -> SagaJson {
    let instance = record.instance;
    let history = record
        .history
        .into_iter()
        .map(|e| EntryJson {
            at: e.at,
            step: e.step,
            compensating: e.compensating,
            event: e.event,
            message: e.message,
            detail: e.detail,
        })
        .collect();
    SagaJson {
        id: record.id,
        name: proto::cosec::CREATE_ORDER_SAGA_NAME,
        status: instance.status.as_str(),
        step: instance.step,
        compensating: instance.compensating,
        done: instance.status != saga::Status::Running,
        shopping_id: instance.data.shopping_id,
        history,
    }
}
