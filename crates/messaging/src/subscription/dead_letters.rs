//! Dead letters: recording a message that will not be handled, and handling again the ones
//! an operator asked to replay ([`crate::dlq`]).

use db::{AssertSqlSafe, Row as _};

use super::{HandlerError, counted::Counted, deliver::settle, runner::Runner};
use crate::{Envelope, Incoming, broker::Delivery};

pub(super) struct DeadLetterRecord<'a> {
    pub(super) id: &'a str,
    pub(super) name: &'a str,
    pub(super) subject: &'a str,
    pub(super) body: &'a [u8],
    pub(super) error: &'a str,
    pub(super) attempts: u32,
}

impl Runner {
    /// Records the message as dead and acks it; if the record cannot be written, the message
    /// is left for redelivery instead (never lost).
    pub(super) async fn dead_letter(&self, delivery: &dyn Delivery, dead: DeadLetterRecord<'_>) {
        let sub = &self.subscription;
        tracing::error!(consumer = %sub.consumer, id = dead.id, name = dead.name, attempts = dead.attempts, error = dead.error, "message dead-lettered");
        match self.record_dead(&dead).await {
            Ok(()) => settle(delivery.ack().await, &sub.consumer),
            Err(error) => {
                tracing::error!(consumer = %sub.consumer, %error, "cannot record a dead letter; redelivering later");
                settle(delivery.nak(sub.retry.max_backoff).await, &sub.consumer);
            }
        }
    }

    async fn record_dead(&self, dead: &DeadLetterRecord<'_>) -> Result<(), sqlx::Error> {
        self.db.write(sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {}.dead_letters (consumer, id, name, subject, body, error, attempts, dead_at, replay_requested)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (consumer, id) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
             dead_at = excluded.dead_at, replay_requested = excluded.replay_requested",
            self.subscription.schema
        )))
        .bind(&self.subscription.consumer)
        .bind(dead.id)
        .bind(dead.name)
        .bind(dead.subject)
        .bind(dead.body.to_vec())
        .bind(dead.error)
        .bind(i64::from(dead.attempts))
        .bind(db::now_micros())
        .bind(false)
        )
        .await?;
        Ok(())
    }

    pub(super) async fn replay_requested(&self) -> Result<(), sqlx::Error> {
        let sub = &self.subscription;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, name, subject, body, attempts FROM {}.dead_letters WHERE consumer = $1 AND replay_requested = $2",
            sub.schema
        )))
        .bind(&sub.consumer)
        .bind(true)
        .fetch_all(self.db.pool())
        .await?;
        for row in rows {
            let (id, name, subject, body, attempts): (String, String, String, Vec<u8>, i64) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            );
            let result = match Envelope::decode(&body) {
                Ok(envelope) => {
                    let incoming = Incoming {
                        subject,
                        envelope,
                        attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                    };
                    self.replay(&incoming).await
                }
                Err(error) => Err(HandlerError::Permanent(error.into())),
            };
            match result {
                Ok(outcome) => {
                    tracing::info!(consumer = %sub.consumer, %id, "dead letter replayed");
                    // Counted like any delivery, so handled and dead-lettered add up.
                    Counted::new(sub, &name).count(outcome.counter());
                    self.db
                        .write(
                            sqlx::query(AssertSqlSafe(format!(
                                "DELETE FROM {}.dead_letters WHERE consumer = $1 AND id = $2",
                                sub.schema
                            )))
                            .bind(&sub.consumer)
                            .bind(&id),
                        )
                        .await?;
                }
                Err(error) => {
                    tracing::warn!(consumer = %sub.consumer, %id, %error, "dead letter replay failed; left in place");
                    self.db.write(sqlx::query(AssertSqlSafe(format!(
                        "UPDATE {}.dead_letters SET replay_requested = $3, error = $4, attempts = attempts + 1
                         WHERE consumer = $1 AND id = $2",
                        sub.schema
                    )))
                    .bind(&sub.consumer)
                    .bind(&id)
                    .bind(false)
                    .bind(error.to_string())
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// A dead letter's inbox row and effects, in a transaction of its own.
    async fn replay(&self, incoming: &Incoming) -> Result<super::counted::Outcome, HandlerError> {
        let mut tx = self.db.begin().await?;
        let outcome = self.handle_in(&mut tx, incoming).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}
