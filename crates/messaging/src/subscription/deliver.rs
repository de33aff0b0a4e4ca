//! Handling a lane's batch in one transaction, a savepoint per message, and settling each
//! delivery after the commit: acked, retried later (its aggregate's later messages wait behind
//! it), or dead-lettered.

use std::time::Instant;

use db::AssertSqlSafe;
use futures::FutureExt as _;
use tracing::Instrument as _;

use super::{
    HandlerError,
    counted::Outcome,
    dead_letters::DeadLetterRecord,
    lanes::{Item, Order},
    runner::Runner,
};
use crate::Incoming;

/// How one message of a committed transaction went, and how long its handler took.
type Handled = (Outcome, std::time::Duration);

/// What became of one message of a committed transaction.
enum Done {
    /// Its effects (or, for a duplicate, nothing) committed.
    Handled(Handled),
    /// Its handler failed; its effects were rolled back.
    Failed(HandlerError, std::time::Duration),
    /// Not tried: an earlier message of its aggregate in the batch failed.
    Behind,
}

/// Why a transaction of messages did not commit: the only message in it failed, or the
/// transaction itself did (begin, a savepoint, commit, the timeout).
struct Failure {
    error: HandlerError,
    took: std::time::Duration,
    /// The part this runner handles is another replica's now (ADR 23): nothing committed.
    fenced: bool,
}

impl Runner {
    /// Handles `batch` (one lane's, in delivery order) and settles every delivery in it, in
    /// one transaction: a message whose handler fails is rolled back to its savepoint and
    /// settled as a failure after the commit, and its aggregate's later messages in the batch
    /// are left for after it; the others commit. Each handler runs once per delivery.
    pub(super) fn deliver<'a>(
        &'a self,
        batch: Vec<Item>,
        order: &'a mut Order,
    ) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let ready = self.take_ready(batch, order).await;
            if ready.is_empty() {
                return;
            }
            match self.try_all(&ready).await {
                Ok(results) => {
                    let mut later = Vec::new();
                    for (item, result) in ready.into_iter().zip(results) {
                        match result {
                            Done::Handled(handled) => {
                                self.settle_handled(&item, handled, order).await;
                            }
                            Done::Failed(error, took) => {
                                self.failed(&item, error, took, order).await;
                            }
                            Done::Behind => later.push(item),
                        }
                    }
                    // Behind a failure: deferred while it waits for its retry, else handled.
                    if !later.is_empty() {
                        self.deliver(later, order).await;
                    }
                }
                Err(failure) if failure.fenced => {
                    // Left unsettled: the new owner has them delivered again, in order.
                    tracing::info!(consumer = %self.subscription.consumer, part = self.part(), "another replica owns this part now; stopping");
                    if let Some(share) = &self.share {
                        share.lost.cancel();
                    }
                }
                Err(failure) if ready.len() == 1 => {
                    if let Some(item) = ready.first() {
                        self.failed(item, failure.error, failure.took, order).await;
                    }
                }
                Err(failure) => {
                    let sub = &self.subscription;
                    tracing::debug!(consumer = %sub.consumer, size = ready.len(), error = format!("{:#}", failure.error), "a batch failed as a whole; handling its messages one by one");
                    for item in ready {
                        self.deliver(vec![item], order).await;
                    }
                }
            }
        })
    }

    /// The items that may be handled now, in order; the others are sent back for later,
    /// behind an earlier message of their aggregate waiting for its retry (unless that message
    /// is among the ready ones, ahead of them: then it is handled first, in the same batch).
    async fn take_ready(&self, batch: Vec<Item>, order: &mut Order) -> Vec<Item> {
        let mut ready: Vec<Item> = Vec::with_capacity(batch.len());
        for item in batch {
            let waits = item
                .key()
                .and_then(|key| order.blocked.get(key))
                .is_some_and(|blocker| {
                    blocker != item.id() && !ready.iter().any(|r| r.id() == blocker)
                });
            if waits {
                let sub = &self.subscription;
                *order.deferred.entry(item.id().to_owned()).or_default() += 1;
                settle(
                    item.delivery.nak(sub.retry.min_backoff).await,
                    &sub.consumer,
                );
            } else {
                ready.push(item);
            }
        }
        ready
    }

    /// [`Runner::handle_all`] within the handler timeout.
    async fn try_all(&self, items: &[Item]) -> Result<Vec<Done>, Failure> {
        let sub = &self.subscription;
        let started = Instant::now();
        tokio::time::timeout(sub.retry.handler_timeout, self.handle_all(items))
            .await
            .unwrap_or_else(|_| {
                Err(Failure {
                    error: HandlerError::Transient(anyhow::anyhow!(
                        "handler timed out after {:?}",
                        sub.retry.handler_timeout
                    )),
                    took: started.elapsed(),
                    fenced: false,
                })
            })
    }

    /// Settles a delivery whose handling failed: retried later (its aggregate's later
    /// messages wait behind it), or dead-lettered.
    async fn failed(
        &self,
        item: &Item,
        error: HandlerError,
        took: std::time::Duration,
        order: &mut Order,
    ) {
        let sub = &self.subscription;
        let deferred = order.deferred.get(item.id()).copied().unwrap_or(0);
        let failures_before = item
            .delivery
            .attempt()
            .saturating_sub(1)
            .saturating_sub(deferred);
        let (id, incoming, counted) = (item.id(), &item.incoming, &item.counted);
        counted.record("message_handler_duration_seconds", took);
        counted.count("messages_failed_total");
        match error {
            HandlerError::Transient(error) if failures_before + 1 < sub.retry.max_attempts => {
                let delay = sub.retry.backoff(failures_before + 1);
                tracing::warn!(parent: &item.span, consumer = %sub.consumer, id = %id, name = %incoming.name(), attempt = failures_before + 1, retry_in = ?delay, error = format!("{error:#}"), "handler failed; will retry");
                settle(item.delivery.nak(delay).await, &sub.consumer);
                if let Some(key) = item.key() {
                    order.blocked.insert(key.to_owned(), id.to_owned());
                }
            }
            HandlerError::Transient(error) | HandlerError::Permanent(error) => {
                let error = format!("{error:#}");
                let dead = DeadLetterRecord {
                    id,
                    name: incoming.name(),
                    subject: &incoming.subject,
                    body: item.delivery.body(),
                    error: &error,
                    attempts: failures_before + 1,
                };
                self.dead_letter(item.delivery.as_ref(), dead).await;
                counted.count("messages_dead_lettered_total");
                unblock(item, order);
            }
        }
    }

    /// Counts a message its transaction committed, acks it (unless the commit did) and lets
    /// its aggregate's later messages through.
    async fn settle_handled(&self, item: &Item, (outcome, took): Handled, order: &mut Order) {
        let sub = &self.subscription;
        item.counted
            .record("message_handler_duration_seconds", took);
        item.counted.count(outcome.counter());
        if self.acks_in_tx(item).is_none() {
            settle(item.delivery.ack().await, &sub.consumer);
        }
        unblock(item, order);
    }

    /// The log position to ack inside the handling transaction, if the log lives there.
    fn acks_in_tx(&self, item: &Item) -> Option<i64> {
        self.log.as_ref()?;
        item.delivery.log_position()
    }

    /// Every item's inbox row and effects in one transaction, acked in it when the embedded
    /// log shares the database. Alone, a failing item fails the transaction; among others, it
    /// is rolled back to its savepoint and the rest commit.
    async fn handle_all(&self, items: &[Item]) -> Result<Vec<Done>, Failure> {
        let started = Instant::now();
        let whole = |error: HandlerError| Failure {
            error,
            took: started.elapsed(),
            fenced: false,
        };
        let mut tx = self.db.begin().await.map_err(|e| whole(e.into()))?;
        let results = if self.subscription.idempotent && items.len() > 1 {
            self.handle_together(&mut tx, items).await.map_err(whole)?
        } else {
            self.handle_each(&mut tx, items).await.map_err(whole)?
        };
        if let Some(log) = &self.log {
            let positions: Vec<i64> = items
                .iter()
                .zip(&results)
                .filter(|(_, done)| matches!(done, Done::Handled(_)))
                .filter_map(|(item, _)| self.acks_in_tx(item))
                .collect();
            log.ack_in(&mut tx, &self.subscription.consumer, &positions)
                .await
                .map_err(|e| whole(e.into()))?;
        }
        // Last before the commit, and on PostgreSQL locked until it: a replica taking the part
        // over waits for this commit, and one that took it first makes this one roll back. A
        // transaction left open by a paused replica does not hold up a take-over.
        if let Some(share) = &self.share
            && !share
                .fence
                .holds(&mut tx)
                .await
                .map_err(|e| whole(e.into()))?
        {
            return Err(Failure {
                fenced: true,
                ..whole(HandlerError::Transient(anyhow::anyhow!("part taken over")))
            });
        }
        tx.commit().await.map_err(|e| whole(e.into()))?;
        Ok(results)
    }

    /// An idempotent handler's batch in one call ([`super::Handler::handle_batch`]): no inbox
    /// rows, no savepoints; its failure is the batch's, which is then handled one at a time.
    async fn handle_together(
        &self,
        tx: &mut db::Conn,
        items: &[Item],
    ) -> Result<Vec<Done>, HandlerError> {
        let started = Instant::now();
        let messages: Vec<&Incoming> = items.iter().map(|item| &item.incoming).collect();
        let handled = std::panic::AssertUnwindSafe(self.handler.handle_batch(tx, &messages))
            .catch_unwind()
            .await;
        handled.unwrap_or_else(|panic| Err(panicked(panic)))?;
        // Each message's share of the batch's time.
        let each = started.elapsed() / u32::try_from(items.len()).unwrap_or(u32::MAX);
        Ok(items
            .iter()
            .map(|_| Done::Handled((Outcome::Handled, each)))
            .collect())
    }

    /// Each item's inbox row and effects, a savepoint apiece when there are several: a failing
    /// item is rolled back to its savepoint and the others go on. Alone, a failing item fails
    /// the transaction.
    async fn handle_each(
        &self,
        tx: &mut db::Conn,
        items: &[Item],
    ) -> Result<Vec<Done>, HandlerError> {
        let mut results = Vec::with_capacity(items.len());
        let mut failed_keys: Vec<&str> = Vec::new();
        let shared = items.len() > 1;
        for item in items {
            if item.key().is_some_and(|key| failed_keys.contains(&key)) {
                results.push(Done::Behind);
                continue;
            }
            let started = Instant::now();
            if shared {
                // Never released (the commit releases them all): one round trip per message.
                sqlx::query("SAVEPOINT message").execute(&mut *tx).await?;
            }
            let handled = self
                .handle_in(tx, &item.incoming)
                .instrument(item.span.clone())
                .await;
            match handled {
                Ok(outcome) => results.push(Done::Handled((outcome, started.elapsed()))),
                // Alone, its failure is the transaction's.
                Err(error) if !shared => return Err(error),
                Err(error) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT message")
                        .execute(&mut *tx)
                        .await?;
                    failed_keys.extend(item.key());
                    results.push(Done::Failed(error, started.elapsed()));
                }
            }
        }
        Ok(results)
    }

    /// The inbox row and, unless it was already there, the handler's effects, inside `tx`.
    pub(super) async fn handle_in(
        &self,
        tx: &mut db::Conn,
        incoming: &Incoming,
    ) -> Result<Outcome, HandlerError> {
        let sub = &self.subscription;
        if sub.idempotent {
            return self.handled(tx, incoming).await;
        }
        let inserted = sqlx::query(AssertSqlSafe(self.insert_inbox.clone()))
            .bind(&sub.consumer)
            .bind(incoming.id())
            .bind(incoming.name())
            .bind(&incoming.subject)
            .bind(db::now_micros())
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() == 0 {
            tracing::debug!(consumer = %sub.consumer, id = incoming.id(), "duplicate delivery; already handled");
            return Ok(Outcome::Duplicate);
        }
        self.handled(tx, incoming).await
    }

    /// The handler's effects, inside `tx`.
    async fn handled(
        &self,
        tx: &mut db::Conn,
        incoming: &Incoming,
    ) -> Result<Outcome, HandlerError> {
        // A panicking handler is a failure to retry, not a dead lane (its task would be gone).
        let handled = std::panic::AssertUnwindSafe(self.handler.handle(tx, incoming))
            .catch_unwind()
            .await;
        handled.unwrap_or_else(|panic| Err(panicked(panic)))?;
        Ok(Outcome::Handled)
    }
}

/// A handler's panic, as a failure to retry.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> HandlerError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    HandlerError::Transient(anyhow::anyhow!("the handler panicked: {what}"))
}

/// Forgets `item` as a blocker and as deferred.
fn unblock(item: &Item, order: &mut Order) {
    order.deferred.remove(item.id());
    if let Some(key) = item.key()
        && order.blocked.get(key).map(String::as_str) == Some(item.id())
    {
        order.blocked.remove(key);
    }
}

pub(super) fn settle(result: Result<(), crate::BrokerError>, consumer: &str) {
    // A lost ack or nak only means the message comes back; the inbox absorbs it.
    if let Err(error) = result {
        tracing::warn!(consumer, %error, "could not settle a delivery; it will be redelivered");
    }
}
