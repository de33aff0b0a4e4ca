//! The sweeper: instances whose deadline passed compensate (no reply in time) or send their
//! failed compensation again.

use db::{AssertSqlSafe, Row as _};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

use super::{Orchestrator, SagaError, rows::Locked, steps::entry};
use crate::definition::Status;

impl<D: Serialize + DeserializeOwned + Send + Sync + 'static> Orchestrator<D> {
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
}
