//! The queues of the process as an operator acts on them: outbox depth, consumer lag, dead
//! letters — read through the framework's tables of every module the process runs, with the
//! same effects as `mallbots dlq replay|discard`.

use axum::{
    extract::{Path, State},
    response::Response,
};
use host::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::live::Hub;

/// Dead letters shown per module: a view, not an export (`mallbots dlq list` has them all).
const DEAD_LETTERS_SHOWN: i64 = 100;

/// An outbox's unpublished messages.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutboxJson {
    module: &'static str,
    /// `null` when it could not be read.
    pending: Option<i64>,
    /// Age of the oldest unpublished message, in ms.
    oldest_pending_ms: Option<i64>,
}

/// A durable consumer's lag.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsumerJson {
    module: &'static str,
    consumer: String,
    /// Messages not yet acknowledged; `null` when unknown.
    lag: Option<u64>,
}

/// A message a consumer gave up on.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeadLetterJson {
    pub(crate) module: &'static str,
    pub(crate) consumer: String,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) attempts: i64,
    /// µs since the epoch.
    pub(crate) dead_at: i64,
    pub(crate) error: String,
    pub(crate) replay_requested: bool,
}

/// The queues of the process.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Operations {
    outboxes: Vec<OutboxJson>,
    consumers: Vec<ConsumerJson>,
    /// Oldest first, at most 100 per module.
    dead_letters: Vec<DeadLetterJson>,
}

impl DeadLetterJson {
    fn new(module: &'static str, dead: messaging::dlq::DeadLetter) -> DeadLetterJson {
        DeadLetterJson {
            module,
            consumer: dead.consumer,
            id: dead.id,
            name: dead.name,
            subject: dead.subject,
            attempts: dead.attempts,
            dead_at: dead.dead_at.timestamp_micros(),
            error: dead.error,
            replay_requested: dead.replay_requested,
        }
    }
}

/// Dead letters of every module of the process, oldest first: those of the messages `of`,
/// or with none named, the first hundred of each module.
pub(crate) async fn dead_letters(
    hub: &Hub,
    of: Option<&[String]>,
) -> Result<Vec<DeadLetterJson>, sqlx::Error> {
    let mut letters = Vec::new();
    for module in hub.queues.modules() {
        let found = match of {
            Some(ids) => messaging::dlq::of_messages(&hub.db, module, ids).await?,
            None => messaging::dlq::list_first(&hub.db, module, DEAD_LETTERS_SHOWN).await?,
        };
        letters.extend(
            found
                .into_iter()
                .map(|dead| DeadLetterJson::new(module, dead)),
        );
    }
    letters.sort_by_key(|letter| letter.dead_at);
    Ok(letters)
}

pub(crate) async fn read(hub: &Hub) -> Result<Operations, sqlx::Error> {
    let report = hub.queues.report().await;
    let now = db::now_micros();
    Ok(Operations {
        outboxes: report
            .outboxes
            .into_iter()
            .map(|outbox| OutboxJson {
                module: outbox.module,
                pending: outbox.pending,
                oldest_pending_ms: outbox.oldest_pending_at.map(|at| (now - at).max(0) / 1000),
            })
            .collect(),
        consumers: report
            .consumers
            .into_iter()
            .map(|consumer| ConsumerJson {
                module: consumer.module,
                consumer: consumer.consumer,
                lag: consumer.lag,
            })
            .collect(),
        dead_letters: dead_letters(hub, None).await?,
    })
}

/// `GET /api/console/operations`.
#[utoipa::path(
    get,
    path = "/api/console/operations",
    operation_id = "consoleOperations",
    responses((status = 200, description = "Outboxes, consumers and dead letters of the modules this process runs", body = Operations)),
    tag = "Console"
)]
pub(crate) async fn operations(State(hub): State<Hub>) -> Response {
    crate::rest::answer(read(&hub).await.map(Some))
}

/// The dead letter a request names.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct Letter {
    /// The module that dead-lettered it.
    module: String,
    /// Its consumer.
    consumer: String,
    /// The message id.
    id: String,
}

/// What an operator does to a dead letter.
#[derive(Debug, Clone, Copy)]
enum Act {
    Replay,
    Discard,
}

/// Replays or discards the dead letter a request names, as `mallbots dlq` would.
async fn act(
    hub: &Hub,
    Letter {
        module,
        consumer,
        id,
    }: Letter,
    act: Act,
) -> Result<axum::Json<host::Empty>, ApiError> {
    let module = hub
        .queues
        .modules()
        .into_iter()
        .find(|known| *known == module)
        .ok_or_else(|| ApiError::not_found(format!("no module {module:?} in this process")))?;
    let found = match act {
        Act::Replay => messaging::dlq::replay(&hub.db, module, &consumer, &id).await,
        Act::Discard => messaging::dlq::discard(&hub.db, module, &consumer, &id).await,
    };
    if found.map_err(|error| ApiError::internal(&error))? {
        tracing::info!(module, consumer, id, ?act, "console: dead letter");
        Ok(axum::Json(host::Empty {}))
    } else {
        Err(ApiError::not_found(format!(
            "no dead letter {id} of consumer {consumer}"
        )))
    }
}

/// `POST /api/console/dead-letters/{module}/{consumer}/{id}/replay`.
#[utoipa::path(
    post,
    path = "/api/console/dead-letters/{module}/{consumer}/{id}/replay",
    operation_id = "replayDeadLetter",
    params(Letter),
    responses(
        (status = 200, description = "Replay requested: the consumer handles it again within a second, once", body = host::Empty),
        (status = 404, description = "No such dead letter or module", body = host::ErrorBody),
    ),
    tag = "Console"
)]
pub(crate) async fn replay(
    State(hub): State<Hub>,
    Path(letter): Path<Letter>,
) -> Result<axum::Json<host::Empty>, ApiError> {
    act(&hub, letter, Act::Replay).await
}

/// `DELETE /api/console/dead-letters/{module}/{consumer}/{id}`.
#[utoipa::path(
    delete,
    path = "/api/console/dead-letters/{module}/{consumer}/{id}",
    operation_id = "discardDeadLetter",
    params(Letter),
    responses(
        (status = 200, description = "Discarded", body = host::Empty),
        (status = 404, description = "No such dead letter or module", body = host::ErrorBody),
    ),
    tag = "Console"
)]
pub(crate) async fn discard(
    State(hub): State<Hub>,
    Path(letter): Path<Letter>,
) -> Result<axum::Json<host::Empty>, ApiError> {
    act(&hub, letter, Act::Discard).await
}
