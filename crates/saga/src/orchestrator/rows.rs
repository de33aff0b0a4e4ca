//! The `sagas` table: an instance locked for update, saved, and read for inspection.

use std::time::Duration;

use db::{AssertSqlSafe, Row as _, RowExt as _};
use serde::{Serialize, de::DeserializeOwned};

use super::{Entry, Orchestrator, Record, SagaError, steps::Deadline};
use crate::definition::{Instance, Status};

impl<D: Serialize + DeserializeOwned + Send + Sync + 'static> Orchestrator<D> {
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

    /// Every instance, oldest first; with `stuck`, only those parked, past their step's
    /// deadline, or running without a change for longer than `stuck` (a step whose reply has
    /// not come: after a crash, say, until the work is taken back).
    ///
    /// # Errors
    /// A database error or an unreadable row.
    pub async fn list(&self, stuck: Option<Duration>) -> Result<Vec<Record<D>>, SagaError> {
        let rows = if let Some(waited) = stuck {
            let query = self.select(
                "AND (status = 'compensation_failed'
                      OR (status = 'running' AND (deadline < $2 OR updated_at < $3)))",
            );
            let now = db::now_micros();
            let waited = i64::try_from(waited.as_micros()).unwrap_or(i64::MAX);
            query
                .bind(now)
                .bind(now.saturating_sub(waited))
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
    pub(super) async fn lock(
        &self,
        tx: &mut db::Conn,
        id: &str,
    ) -> Result<Option<Locked<D>>, SagaError> {
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

    pub(super) async fn save(
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

    pub(super) async fn save_history(
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
pub(super) struct Locked<D> {
    pub(super) instance: Instance<D>,
    pub(super) history: Vec<Entry>,
    pub(super) waiting: String,
    pub(super) deadline: Option<i64>,
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
