//! The console's routes: its page and assets under `/console` (public: they hold no data),
//! its data under `/api/console` (the admin's).

use std::collections::HashMap;

use axum::{
    Router,
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use host::ApiError;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::{
    live::{Hub, OrderRow, Step, Summary},
    operations::DeadLetterJson,
};

#[derive(OpenApi)]
#[openapi(
    paths(
        board,
        order_timeline,
        crate::live::stream,
        crate::operations::operations,
        crate::operations::replay,
        crate::operations::discard
    ),
    tags((name = "Console", description = "The operators' live view: board, timelines, queues"))
)]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

/// The page and its assets, compiled in: nothing is fetched at run time.
const PAGE: &str = include_str!("../assets/console.html");
const SCRIPT: &str = include_str!("../assets/console.js");
const STYLE: &str = include_str!("../assets/console.css");

pub(crate) fn router(hub: Hub) -> Router {
    let data = Router::new()
        .route("/api/console/board", get(board))
        .route("/api/console/orders/{id}", get(order_timeline))
        .route("/api/console/live", get(crate::live::stream))
        .route(
            "/api/console/operations",
            get(crate::operations::operations),
        )
        .route(
            "/api/console/dead-letters/{module}/{consumer}/{id}/replay",
            post(crate::operations::replay),
        )
        .route(
            "/api/console/dead-letters/{module}/{consumer}/{id}",
            delete(crate::operations::discard),
        )
        .route_layer(host::auth::only(host::auth::Caller::is_admin))
        .with_state(hub);
    let asset = |body: &'static str, kind: &'static str| {
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
        })
    };
    Router::new()
        .route("/console", asset(PAGE, "text/html; charset=utf-8"))
        .route("/console/", asset(PAGE, "text/html; charset=utf-8"))
        .route(
            "/console/console.js",
            asset(SCRIPT, "text/javascript; charset=utf-8"),
        )
        .route(
            "/console/console.css",
            asset(STYLE, "text/css; charset=utf-8"),
        )
        .merge(data)
}

/// The board: counts, rate, and the latest orders of each status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BoardJson {
    summary: Summary,
    /// The 12 latest of each status, newest first.
    orders: Vec<OrderRow>,
}

/// `GET /api/console/board`.
#[utoipa::path(
    get,
    path = "/api/console/board",
    operation_id = "consoleBoard",
    responses((status = 200, description = "The order board now", body = BoardJson)),
    tag = "Console"
)]
async fn board(State(hub): State<Hub>) -> Response {
    let read = async {
        Ok(Some(BoardJson {
            summary: crate::board::summary(&hub.db).await?,
            orders: crate::board::columns(&hub.db).await?,
        }))
    };
    answer(read.await)
}

/// A read's answer: its JSON, 404 when there is nothing, the database's failure once mapped.
pub(crate) fn answer<T: Serialize>(read: Result<Option<T>, sqlx::Error>) -> Response {
    match read {
        Ok(Some(found)) => axum::Json(found).into_response(),
        Ok(None) => ApiError::not_found("order not found").into_response(),
        Err(error) => ApiError::internal(&error).into_response(),
    }
}

/// A consumer that handled a message, and when.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HandledJson {
    module: &'static str,
    consumer: String,
    /// µs since the epoch.
    at: i64,
}

/// One step of an order's timeline: a message, who handled it, who gave up on it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StepJson {
    #[serde(flatten)]
    step: Step,
    /// The consumers of this process's modules that handled it (kept for a day).
    handled_by: Vec<HandledJson>,
    /// Dead letters of it, if a consumer gave up.
    dead_letters: Vec<DeadLetterJson>,
}

/// An order's timeline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TimelineJson {
    order: Option<OrderRow>,
    /// Every message about the order, in the order they were sent.
    steps: Vec<StepJson>,
}

/// `GET /api/console/orders/{id}`.
#[utoipa::path(
    get,
    path = "/api/console/orders/{id}",
    operation_id = "consoleOrderTimeline",
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Every message about the order across modules, with who handled each and when", body = TimelineJson),
        (status = 404, description = "The console has seen nothing about this order", body = host::ErrorBody),
    ),
    tag = "Console"
)]
async fn order_timeline(State(hub): State<Hub>, Path(id): Path<String>) -> Response {
    answer(timeline(&hub, &id).await)
}

async fn timeline(hub: &Hub, id: &str) -> Result<Option<TimelineJson>, sqlx::Error> {
    let (order, steps) = crate::board::timeline(&hub.db, id).await?;
    if order.is_none() && steps.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = steps.iter().map(|step| step.id.clone()).collect();
    let mut handled: HashMap<String, Vec<HandledJson>> = HashMap::new();
    for module in hub.queues.modules() {
        // The console's own reading of every message is not a hop of the order.
        let mut consumers = hub.queues.consumers_of(module);
        consumers.retain(|consumer| consumer != crate::CONSUMER);
        for received in messaging::inbox::received(&hub.db, module, &consumers, &ids).await? {
            handled.entry(received.id).or_default().push(HandledJson {
                module,
                consumer: received.consumer,
                at: received.received_at,
            });
        }
    }
    let letters = crate::operations::dead_letters(hub, Some(&ids)).await?;
    let steps = steps
        .into_iter()
        .map(|step| {
            let mut handled_by = handled.remove(&step.id).unwrap_or_default();
            handled_by.sort_by_key(|by| by.at);
            let dead_letters = letters
                .iter()
                .filter(|letter| letter.id == step.id)
                .cloned()
                .collect();
            StepJson {
                step,
                handled_by,
                dead_letters,
            }
        })
        .collect();
    Ok(Some(TimelineJson { order, steps }))
}
