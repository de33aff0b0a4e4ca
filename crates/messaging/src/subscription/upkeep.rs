//! A subscription's once-a-second upkeep, beside its consume loop: dead letters an operator
//! asked to replay, rewinds to start or finish, and inbox rows past their retention.

use std::{sync::Arc, time::Duration};

use db::AssertSqlSafe;
use tokio_util::sync::CancellationToken;

use super::{runner::Runner, sleep_or_stop};
use crate::broker::Broker;

impl Runner {
    /// Re-delivers dead letters an operator asked to replay, follows rewinds, and purges old
    /// inbox rows.
    pub(super) async fn maintain(
        self: Arc<Self>,
        broker: Arc<dyn Broker>,
        stop: CancellationToken,
    ) {
        let mut last_purge = tokio::time::Instant::now();
        loop {
            if sleep_or_stop(Duration::from_secs(1), &stop).await {
                return;
            }
            if let Err(error) = self.replay_requested().await {
                tracing::warn!(consumer = %self.subscription.consumer, %error, "replaying dead letters failed");
            }
            if let Err(error) = self.follow_rewind(broker.as_ref()).await {
                tracing::warn!(consumer = %self.subscription.consumer, error = format!("{error:#}"), "following a rewind failed");
            }
            if last_purge.elapsed() > Duration::from_secs(60) {
                last_purge = tokio::time::Instant::now();
                if let Err(error) = self.purge_inbox().await {
                    tracing::warn!(consumer = %self.subscription.consumer, %error, "purging the inbox failed");
                }
            }
        }
    }

    /// Deletes this consumer's inbox rows older than the retention.
    async fn purge_inbox(&self) -> Result<(), sqlx::Error> {
        let sub = &self.subscription;
        let cutoff =
            db::now_micros() - i64::try_from(sub.inbox_retention.as_micros()).unwrap_or(i64::MAX);
        self.db
            .write(
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM {}.inbox WHERE consumer = $1 AND received_at < $2",
                    sub.schema
                )))
                .bind(&sub.consumer)
                .bind(cutoff),
            )
            .await?;
        Ok(())
    }
}
