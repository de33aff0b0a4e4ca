//! Persisted saga instances: `<schema>.sagas`, one row per instance, changed only under a row
//! lock in the transaction that also stages the next command (and, for replies, records the
//! inbox row). A sweeper turns overdue steps into compensation and re-sends failed
//! compensations after a back-off.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use db::{AssertSqlSafe, Db, Migration, Migrations, Row as _, RowExt as _};
use messaging::{Handler, HandlerError, Incoming, Message, Outbox};
use proto::am;
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

use crate::definition::{Command, Instance, Next, Reply, Saga, Status};

#[cfg(test)]
mod tests;

/// Metadata keys of the book's saga protocol, plus the step marker (`COMMAND_SAGA_STEP`), which
/// command handlers echo back as `REPLY_SAGA_STEP` like every `COMMAND_*` key.
pub const SAGA_ID_HDR: &str = "COMMAND_SAGA_ID";
/// See [`SAGA_ID_HDR`].
pub const SAGA_NAME_HDR: &str = "COMMAND_SAGA_NAME";
/// See [`SAGA_ID_HDR`].
pub const SAGA_STEP_HDR: &str = "COMMAND_SAGA_STEP";

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

/// A stored instance, for inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<D> {
    /// The saga id.
    pub id: String,
    /// The state.
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
        let reply_header = |key: &str| {
            message
                .metadata(&key.replacen(am::COMMAND_HDR_PREFIX, am::REPLY_HDR_PREFIX, 1))
                .map(str::to_owned)
        };
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

    /// Handles every instance whose deadline passed: an unanswered step compensates, a
    /// compensation retry is sent. How many were handled.
    ///
    /// # Errors
    /// A database error.
    pub async fn sweep(&self) -> Result<usize, SagaError> {
        let due = sqlx::query(AssertSqlSafe(format!(
            "SELECT id FROM {}.sagas WHERE name = $1 AND status = 'running' AND deadline IS NOT NULL AND deadline <= $2
             ORDER BY deadline LIMIT 100",
            self.schema
        )))
        .bind(self.saga.name())
        .bind(db::now_micros())
        .fetch_all(self.db.pool())
        .await?;
        let mut handled = 0;
        for row in due {
            let id: String = row.try_get(0)?;
            let mut tx = self.db.begin().await?;
            let Some(Locked {
                mut instance,
                mut history,
                waiting,
                deadline,
            }) = self.lock(&mut tx, &id).await?
            else {
                continue;
            };
            if instance.status != Status::Running || deadline.is_none_or(|d| d > db::now_micros()) {
                continue; // another sweeper or a reply got there first
            }
            let next = if waiting == "retry" {
                entry(
                    &mut history,
                    &instance,
                    "retry",
                    "",
                    &format!("try {}", instance.attempts + 1),
                );
                self.saga.retry(&instance)
            } else {
                entry(&mut history, &instance, "timeout", "", "no reply in time");
                self.saga.timeout(&mut instance)
            };
            let deadline = self
                .follow(&mut tx, &id, &mut instance, next, &mut history)
                .await?;
            self.save(&mut tx, &id, &instance, &history, deadline, false)
                .await?;
            tx.commit().await?;
            handled += 1;
        }
        Ok(handled)
    }

    /// Sweeps every [`Timing::sweep_every`] until `stop`.
    pub async fn run_sweeper(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.timing.sweep_every) => {}
            }
            if let Err(error) = self.sweep().await {
                tracing::warn!(saga = self.saga.name(), %error, "saga sweep failed");
            }
        }
    }

    /// The outbox the orchestrator stages its commands in (the module relays it).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The reply subscription's handler.
    pub fn replies(&self) -> impl Handler {
        Replies(self.clone())
    }

    /// Instance `id`, if it exists.
    ///
    /// # Errors
    /// A database error or an unreadable row.
    pub async fn find(&self, id: &str) -> Result<Option<Record<D>>, SagaError> {
        let query = self.select("AND id = $2");
        let row = query
            .bind(id.to_owned())
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Every instance, oldest first; with `stuck`, only those parked or past their deadline.
    ///
    /// # Errors
    /// A database error or an unreadable row.
    pub async fn list(&self, stuck: bool) -> Result<Vec<Record<D>>, SagaError> {
        let rows = if stuck {
            let query = self.select(
                "AND (status = 'compensation_failed' OR (status = 'running' AND deadline < $2))",
            );
            query
                .bind(db::now_micros())
                .fetch_all(self.db.pool())
                .await?
        } else {
            self.select("").fetch_all(self.db.pool()).await?
        };
        rows.iter().map(record).collect()
    }

    fn select(
        &self,
        filter: &str,
    ) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        let sql = format!(
            "SELECT id, data, step, compensating, status, attempts, history, deadline, created_at, updated_at
             FROM {}.sagas WHERE name = $1 {filter} ORDER BY created_at",
            self.schema
        );
        sqlx::query(AssertSqlSafe(sql)).bind(self.saga.name())
    }

    /// Loads `id` for update: a row lock on PostgreSQL; SQLite write transactions are serial.
    async fn lock(&self, tx: &mut db::Conn, id: &str) -> Result<Option<Locked<D>>, SagaError> {
        let lock = self.db.backend().row_lock();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, data, step, compensating, status, attempts, history, waiting, deadline
             FROM {}.sagas WHERE name = $1 AND id = $2{lock}",
            self.schema
        )))
        .bind(self.saga.name())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (instance, history) = decode(id, &row)?;
        Ok(Some(Locked {
            instance,
            history,
            waiting: row.try_get(7)?,
            deadline: row.try_get(8)?,
        }))
    }

    /// Carries out `next`; the new deadline and what it waits for.
    async fn follow(
        &self,
        tx: &mut db::Conn,
        id: &str,
        instance: &mut Instance<D>,
        next: Next,
        history: &mut Vec<Entry>,
    ) -> Result<Deadline, SagaError> {
        match next {
            Next::Send(command) => {
                self.send(tx, id, instance, &command).await?;
                entry(history, instance, "sent", command.name, "");
                Ok(Deadline::Reply(
                    db::now_micros() + micros(self.timing.step_timeout),
                ))
            }
            Next::RetryLater => {
                let delay = self
                    .timing
                    .retry_backoff
                    .saturating_mul(2_u32.saturating_pow(instance.attempts.saturating_sub(1)));
                Ok(Deadline::Retry(
                    db::now_micros() + micros(delay.min(Duration::from_secs(300))),
                ))
            }
            Next::Stop => {
                entry(history, instance, "finished", "", instance.status.as_str());
                metrics::counter!("saga_outcomes_total", "saga" => self.saga.name(),
                    "outcome" => instance.status.as_str())
                .increment(1);
                if instance.status == Status::CompensationFailed {
                    tracing::error!(
                        saga = self.saga.name(),
                        id,
                        step = instance.step,
                        "compensation keeps failing; saga parked"
                    );
                }
                Ok(Deadline::None)
            }
        }
    }

    async fn send(
        &self,
        tx: &mut db::Conn,
        id: &str,
        instance: &Instance<D>,
        command: &Command,
    ) -> Result<(), SagaError> {
        let message = Message::from_bytes(command.subject, command.name, command.payload.clone())
            .with_metadata(am::COMMAND_REPLY_CHANNEL_HDR, self.saga.reply_channel())
            .with_metadata(SAGA_ID_HDR, id)
            .with_metadata(SAGA_NAME_HDR, self.saga.name())
            .with_metadata(SAGA_STEP_HDR, Saga::step_token(instance))
            .about(id);
        self.outbox.stage(tx, [message]).await?;
        Ok(())
    }

    async fn save(
        &self,
        tx: &mut db::Conn,
        id: &str,
        instance: &Instance<D>,
        history: &[Entry],
        deadline: Deadline,
        insert: bool,
    ) -> Result<(), SagaError> {
        let corrupt = |e: serde_json::Error| SagaError::Corrupt {
            id: id.to_owned(),
            reason: e.to_string(),
        };
        let data = serde_json::to_string(&instance.data).map_err(corrupt)?;
        let history = serde_json::to_string(history).map_err(corrupt)?;
        let (waiting, deadline) = match deadline {
            Deadline::Reply(at) => ("reply", Some(at)),
            Deadline::Retry(at) => ("retry", Some(at)),
            Deadline::None => ("nothing", None),
        };
        let now = db::now_micros();
        let sql = if insert {
            format!(
                "INSERT INTO {}.sagas (name, id, data, step, compensating, status, attempts, waiting, deadline, history, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                self.schema
            )
        } else {
            format!(
                "UPDATE {}.sagas SET data = $3, step = $4, compensating = $5, status = $6, attempts = $7, waiting = $8,
                 deadline = $9, history = $10, updated_at = $11 WHERE name = $1 AND id = $2",
                self.schema
            )
        };
        sqlx::query(AssertSqlSafe(sql))
            .bind(self.saga.name())
            .bind(id)
            .bind(data)
            .bind(instance.step)
            .bind(instance.compensating)
            .bind(instance.status.as_str())
            .bind(i64::from(instance.attempts))
            .bind(waiting)
            .bind(deadline)
            .bind(history)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn save_history(
        &self,
        tx: &mut db::Conn,
        id: &str,
        history: &[Entry],
    ) -> Result<(), SagaError> {
        let history = serde_json::to_string(history).map_err(|e| SagaError::Corrupt {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {}.sagas SET history = $3, updated_at = $4 WHERE name = $1 AND id = $2",
            self.schema
        )))
        .bind(self.saga.name())
        .bind(id)
        .bind(history)
        .bind(db::now_micros())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// An instance loaded for update, with what it waits for and until when.
struct Locked<D> {
    instance: Instance<D>,
    history: Vec<Entry>,
    waiting: String,
    deadline: Option<i64>,
}

enum Deadline {
    Reply(i64),
    Retry(i64),
    None,
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn entry<D>(
    history: &mut Vec<Entry>,
    instance: &Instance<D>,
    event: &str,
    message: &str,
    detail: &str,
) {
    history.push(Entry {
        at: db::now_micros(),
        step: instance.step,
        compensating: instance.compensating,
        event: event.to_owned(),
        message: message.to_owned(),
        detail: detail.to_owned(),
    });
}

fn decode<D: DeserializeOwned>(
    id: &str,
    row: &db::AnyRow,
) -> Result<(Instance<D>, Vec<Entry>), SagaError> {
    let corrupt = |reason: String| SagaError::Corrupt {
        id: id.to_owned(),
        reason,
    };
    let data: String = row.try_get(1)?;
    let status: String = row.try_get(4)?;
    let history: String = row.try_get(6)?;
    let instance = Instance {
        data: serde_json::from_str(&data).map_err(|e| corrupt(e.to_string()))?,
        step: row.try_get(2)?,
        compensating: row.flag(3)?,
        status: Status::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status {status:?}")))?,
        attempts: u32::try_from(row.try_get::<i64, _>(5)?).unwrap_or(0),
    };
    Ok((
        instance,
        serde_json::from_str(&history).map_err(|e| corrupt(e.to_string()))?,
    ))
}

fn record<D: DeserializeOwned>(row: &db::AnyRow) -> Result<Record<D>, SagaError> {
    let id: String = row.try_get(0)?;
    let (instance, history) = decode(&id, row)?;
    Ok(Record {
        id,
        instance,
        history,
        deadline: row.try_get(7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    })
}

struct Replies<D>(Orchestrator<D>);

#[async_trait]
impl<D: Serialize + DeserializeOwned + Send + Sync + 'static> Handler for Replies<D> {
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        self.0.on_reply(tx, message).await
    }
}
