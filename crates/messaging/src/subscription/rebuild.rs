//! Rewinds: an operator's request to rebuild this consumer's model from the start of the
//! stream, carried out by the consume loop between two batches.

use db::AssertSqlSafe;

use super::runner::Runner;
use crate::broker::Broker;

impl Runner {
    /// Empties the handler's model and this consumer's inbox, then moves the consumer back to
    /// the start of the stream. Each step may be repeated: a crash part-way leaves the request
    /// pending, and the next attempt starts over.
    pub(super) async fn rewind_now(&self, broker: &dyn Broker) -> anyhow::Result<()> {
        let sub = &self.subscription;
        let mut tx = self.db.begin().await?;
        if !self.handler.reset(&mut tx, &sub.consumer).await? {
            tx.rollback().await?;
            tracing::warn!(consumer = %sub.consumer, "this consumer's handler cannot be rebuilt; rewind refused");
            return crate::rewind::finish(
                &self.db,
                sub.schema,
                &sub.consumer,
                "refused: its handler cannot be rebuilt",
            )
            .await
            .map_err(Into::into);
        }
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {}.inbox WHERE consumer = $1",
            sub.schema
        )))
        .bind(&sub.consumer)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Every part's consumer: the other parts' runners reopen theirs from the start.
        for durable in sub.durables() {
            broker.rewind(&durable).await?;
        }
        crate::rewind::started(&self.db, sub.schema, &sub.consumer).await?;
        tracing::info!(consumer = %sub.consumer, "rewound to the start of the stream; rebuilding");
        Ok(())
    }

    /// Starts a requested rewind (through the consume loop), and marks a started one done once
    /// the consumer has caught up.
    pub(super) async fn follow_rewind(&self, broker: &dyn Broker) -> anyhow::Result<()> {
        let sub = &self.subscription;
        match crate::rewind::status(&self.db, sub.schema, &sub.consumer).await? {
            Some(status) if status.started_at.is_none() => self.rewind.notify_one(),
            Some(status) if status.done_at.is_none() && self.caught_up(broker).await? => {
                crate::rewind::finish(&self.db, sub.schema, &sub.consumer, "rebuilt").await?;
                tracing::info!(consumer = %sub.consumer, "rebuilt from the stream");
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether every part's consumer has acknowledged everything.
    async fn caught_up(&self, broker: &dyn Broker) -> Result<bool, crate::BrokerError> {
        for durable in self.subscription.durables() {
            if broker.lag(&durable).await? != Some(0) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
