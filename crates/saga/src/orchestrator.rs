//! Persisted saga instances: `<schema>.sagas`, one row per instance, changed only under a row
//! lock in the transaction that also stages the next command (and, for replies, records the
//! inbox row). A sweeper turns overdue steps into compensation and re-sends failed
//! compensations after a back-off.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use db::{AssertSqlSafe, Db, Migration, Migrations};
use messaging::{Handler, HandlerError, Incoming, Outbox};
use proto::am;
use serde::{Serialize, de::DeserializeOwned};

use crate::definition::{Instance, Reply, Saga, Status};

mod rows;
mod steps;
mod sweep;
#[cfg(test)]
mod tests;

use rows::Locked;
use steps::entry;

/// Metadata keys of the book's saga protocol, plus the step marker (`COMMAND_SAGA_STEP`), which
/// command handlers echo back as `REPLY_SAGA_STEP` like every `COMMAND_*` key.
pub const SAGA_ID_HDR: &str = "COMMAND_SAGA_ID";
/// See [`SAGA_ID_HDR`].
pub const SAGA_NAME_HDR: &str = "COMMAND_SAGA_NAME";
/// See [`SAGA_ID_HDR`].
pub const SAGA_STEP_HDR: &str = "COMMAND_SAGA_STEP";

/// The key a command handler echoes `key` (a `COMMAND_*` key) back under in its reply.
fn echoed(key: &str) -> String {
    key.replacen(am::COMMAND_HDR_PREFIX, am::REPLY_HDR_PREFIX, 1)
}

/// The saga a message belongs to: a command's `COMMAND_SAGA_ID`, or the `REPLY_SAGA_ID` its
/// handler echoed in the reply. What an observer of the stream (the console) ties them by.
pub fn saga_of(message: &Incoming) -> Option<&str> {
    message
        .metadata(SAGA_ID_HDR)
        .or_else(|| message.metadata(REPLY_SAGA_ID_HDR))
}

/// [`SAGA_ID_HDR`] as a reply echoes it, spelled out: [`saga_of`] reads it for every message
/// an observer sees.
const REPLY_SAGA_ID_HDR: &str = "REPLY_SAGA_ID";

/// Installs `{schema}.sagas`.
pub const MIGRATIONS: Migrations = Migrations {
    component: "saga",
    steps: &[Migration {
        version: 1,
        description: "saga instances",
        sql: "
            CREATE TABLE {schema}.sagas (
                name TEXT NOT NULL,
                id TEXT NOT NULL,
                data TEXT NOT NULL,
                step INTEGER NOT NULL,
                compensating {bool} NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                waiting TEXT NOT NULL,
                deadline BIGINT,
                history TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (name, id)
            );
            CREATE INDEX {index}sagas_due ON {on}sagas (deadline) WHERE status = 'running';",
    }],
};

/// Timing of an orchestrator.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long a step waits for its reply before the saga compensates (book: forever).
    pub step_timeout: Duration,
    /// First delay before re-sending a failed compensation; doubled per try.
    pub retry_backoff: Duration,
    /// How often overdue instances are looked for.
    pub sweep_every: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            step_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_secs(1),
            sweep_every: Duration::from_millis(500),
        }
    }
}

/// One line of an instance's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// When (µs since the epoch).
    pub at: i64,
    /// The step.
    pub step: i32,
    /// Whether it was compensating.
    pub compensating: bool,
    /// What happened: `sent`, `reply`, `timeout`, `retry`, `ignored`, `finished`.
    pub event: String,
    /// The command sent or reply received.
    pub message: String,
    /// `SUCCESS`/`FAILURE` for replies, a reason for `ignored`, the status for `finished`.
    pub detail: String,
}

/// A stored instance, for inspection (serialized flat: id, the state's fields, history, times).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record<D> {
    /// The saga id.
    pub id: String,
    /// The state.
    #[serde(flatten)]
    pub instance: Instance<D>,
    /// What happened so far.
    pub history: Vec<Entry>,
    /// When a reply is due or a retry will go out (µs since the epoch).
    pub deadline: Option<i64>,
    /// Created at (µs since the epoch).
    pub created_at: i64,
    /// Last changed (µs since the epoch).
    pub updated_at: i64,
}

impl<D: serde::Serialize> Record<D> {
    /// The same record with its data as JSON: what an operator's tool shows of any saga.
    ///
    /// # Errors
    /// The data does not serialize.
    pub fn with_json_data(self) -> Result<Record<serde_json::Value>, serde_json::Error> {
        let Instance {
            data,
            step,
            compensating,
            status,
            attempts,
        } = self.instance;
        Ok(Record {
            id: self.id,
            instance: Instance {
                data: serde_json::to_value(data)?,
                step,
                compensating,
                status,
                attempts,
            },
            history: self.history,
            deadline: self.deadline,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Why the orchestrator could not do its work (retried by its callers).
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// The database failed.
    #[error("saga store: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row cannot be read.
    #[error("saga {id}: stored data unreadable: {reason}")]
    Corrupt {
        /// The saga id.
        id: String,
        /// What failed.
        reason: String,
    },
}

impl From<SagaError> for HandlerError {
    fn from(error: SagaError) -> HandlerError {
        match error {
            SagaError::Database(e) => HandlerError::Transient(e.into()),
            corrupt @ SagaError::Corrupt { .. } => HandlerError::Permanent(corrupt.into()),
        }
    }
}

/// Runs instances of one saga in `schema`, sending through `outbox`.
pub struct Orchestrator<D> {
    saga: Arc<Saga<D>>,
    db: Db,
    schema: &'static str,
    outbox: Outbox,
    timing: Timing,
}

impl<D> Clone for Orchestrator<D> {
    fn clone(&self) -> Self {
        Orchestrator {
            saga: self.saga.clone(),
            db: self.db.clone(),
            schema: self.schema,
            outbox: self.outbox.clone(),
            timing: self.timing.clone(),
        }
    }
}

impl<D: Serialize + DeserializeOwned + Send + Sync + 'static> Orchestrator<D> {
    /// An orchestrator for `saga` (tables from [`MIGRATIONS`] in `schema`).
    pub fn new(
        saga: Saga<D>,
        db: Db,
        schema: &'static str,
        outbox: Outbox,
        timing: Timing,
    ) -> Orchestrator<D> {
        // Started at zero, so a dashboard shows "none compensated" rather than no data.
        metrics::counter!("sagas_started_total", "saga" => saga.name()).increment(0);
        for status in [
            Status::Completed,
            Status::Compensated,
            Status::CompensationFailed,
        ] {
            metrics::counter!("saga_outcomes_total", "saga" => saga.name(), "outcome" => status.as_str())
                .increment(0);
        }
        Orchestrator {
            saga: Arc::new(saga),
            db,
            schema,
            outbox,
            timing,
        }
    }

    /// Starts instance `id` inside `tx` (with the triggering message's inbox row): saves it
    /// and stages its first command. False, and nothing done, if `id` already exists.
    ///
    /// # Errors
    /// A database error; the caller's transaction must roll back.
    #[tracing::instrument(name = "saga start", skip_all, fields(module = self.schema, saga = self.saga.name(), id))]
    pub async fn start(&self, tx: &mut db::Conn, id: &str, data: D) -> Result<bool, SagaError> {
        let exists = sqlx::query(AssertSqlSafe(format!(
            "SELECT 1 FROM {}.sagas WHERE name = $1 AND id = $2",
            self.schema
        )))
        .bind(self.saga.name())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_some() {
            return Ok(false);
        }
        metrics::counter!("sagas_started_total", "saga" => self.saga.name()).increment(1);
        let (mut instance, next) = self.saga.begin(data);
        let mut history = Vec::new();
        let deadline = self
            .follow(tx, id, &mut instance, next, &mut history)
            .await?;
        self.save(tx, id, &instance, &history, deadline, true)
            .await?;
        Ok(true)
    }

    /// Applies a reply (from the reply subscription, inside its inbox transaction).
    ///
    /// # Errors
    /// Transient for database errors; permanent for a reply to an unknown instance.
    #[tracing::instrument(name = "saga reply", skip_all, fields(module = self.schema, saga = self.saga.name(), reply = message.name()))]
    pub async fn on_reply(
        &self,
        tx: &mut db::Conn,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        let reply_header = |key: &str| message.metadata(&echoed(key)).map(str::to_owned);
        let (Some(id), Some(name)) = (reply_header(SAGA_ID_HDR), reply_header(SAGA_NAME_HDR))
        else {
            tracing::debug!(
                reply = message.id(),
                "a reply without saga headers; ignored"
            );
            return Ok(());
        };
        if name != self.saga.name() {
            tracing::debug!(reply = message.id(), saga = %name, "a reply for another saga; ignored");
            return Ok(());
        }
        let Some(Locked {
            mut instance,
            mut history,
            ..
        }) = self.lock(tx, &id).await?
        else {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "reply {} for unknown saga {name} {id}",
                message.id()
            )));
        };
        let reply = Reply {
            name: message.name().to_owned(),
            success: message.metadata(am::REPLY_OUTCOME_HDR) == Some(am::OUTCOME_SUCCESS),
            payload: message.envelope.payload.clone(),
        };
        let token = reply_header(SAGA_STEP_HDR);
        let outcome = if reply.success {
            am::OUTCOME_SUCCESS
        } else {
            am::OUTCOME_FAILURE
        };
        let next = match self.saga.reply(&mut instance, &reply, token.as_deref()) {
            Ok(next) => {
                if let Some(sent) = history.iter().rev().find(|entry| entry.event == "sent") {
                    let waited = (db::now_micros() - sent.at).max(0);
                    metrics::histogram!("saga_step_duration_seconds", "saga" => self.saga.name(),
                        "command" => sent.message.clone(), "outcome" => outcome)
                    .record(waited as f64 / 1e6);
                }
                entry(&mut history, &instance, "reply", &reply.name, outcome);
                next
            }
            Err(ignored) => {
                tracing::info!(saga = %name, %id, reply = message.id(), reason = %ignored, "reply ignored");
                entry(
                    &mut history,
                    &instance,
                    "ignored",
                    &reply.name,
                    &ignored.to_string(),
                );
                self.save_history(tx, &id, &history).await?;
                return Ok(());
            }
        };
        let deadline = self
            .follow(tx, &id, &mut instance, next, &mut history)
            .await?;
        self.save(tx, &id, &instance, &history, deadline, false)
            .await?;
        Ok(())
    }

    /// The outbox the orchestrator stages its commands in (the module relays it).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The reply subscription's handler.
    pub fn replies(&self) -> impl Handler {
        Replies(self.clone())
    }
}

struct Replies<D>(Orchestrator<D>);

#[async_trait]
impl<D: Serialize + DeserializeOwned + Send + Sync + 'static> Handler for Replies<D> {
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        self.0.on_reply(tx, message).await
    }
}
