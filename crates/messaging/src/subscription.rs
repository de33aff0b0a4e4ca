//! Subscriptions: a durable consumer whose messages are handled exactly once per consumer.
//!
//! The consumer hands out what is ready, up to [`Subscription::batch`] at a time. Each
//! message goes to one of [`Subscription::concurrency`] lanes, chosen by its aggregate key, so
//! different aggregates are handled concurrently and one aggregate's messages strictly in
//! order, one at a time. A lane handles what it has queued in one transaction — an inbox row
//! and the handler's effects per message, one commit — then acks them (on the embedded log in
//! the same database, inside that transaction). If any message of a batch fails, the batch is
//! rolled back and its messages are handled one by one, so one failure never sinks the
//! others: a duplicate finds its inbox row and is acked quietly; a transient failure is
//! redelivered after an exponential back-off while later messages of its aggregate wait
//! behind it; a permanent one (bad bytes, a payload that does not decode, a handler that says
//! so) or the last allowed attempt goes to the dead-letter table, then is acked. See ADR 17.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use db::Db;
use tokio_util::sync::CancellationToken;

use crate::{
    Incoming,
    broker::{Broker, ConsumerSpec},
};

mod counted;
mod dead_letters;
mod deliver;
mod lanes;
mod rebuild;
mod runner;
mod shares;
mod upkeep;

pub use shares::run_shared;

/// Why a handler did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a database or network hiccup): retried with back-off.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Will never work (malformed message, impossible request): dead-lettered at once.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl From<anyhow::Error> for HandlerError {
    fn from(error: anyhow::Error) -> HandlerError {
        HandlerError::Transient(error)
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> HandlerError {
        HandlerError::Transient(error.into())
    }
}

/// Handles one message inside the inbox transaction. The framework begins, records the inbox
/// row, calls this, commits and acks; the handler never does any of that. The transaction may
/// hold other messages of the same batch, and may be rolled back and the message handled
/// again alone: effects outside `tx` must be safe to repeat.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies `message`'s effects through `tx`.
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError>;

    /// Applies a batch's `messages`, in order, through `tx`: called instead of
    /// [`Handler::handle`] for each when the subscription is
    /// [`idempotent`](field@Subscription::idempotent) and more than one message is ready, so a
    /// handler may write them with one statement instead of one each. A failure fails the
    /// batch, whose messages are then handled one at a time through [`Handler::handle`].
    async fn handle_batch(
        &self,
        tx: &mut db::Conn,
        messages: &[&Incoming],
    ) -> Result<(), HandlerError> {
        for message in messages {
            self.handle(tx, message).await?;
        }
        Ok(())
    }

    /// Empties what this handler built from `consumer`'s messages, so that a rewound consumer
    /// ([`crate::rewind`]) rebuilds it from the start of the stream. True when done; false
    /// (the default) for handlers whose effects must not happen twice (commands, notifications):
    /// their consumers cannot be rewound.
    async fn reset(&self, tx: &mut db::Conn, consumer: &str) -> Result<bool, HandlerError> {
        let _ = (tx, consumer);
        Ok(false)
    }
}

/// Retry behaviour of a subscription.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Deliveries before a transiently failing message is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further failure.
    pub min_backoff: Duration,
    /// Longest delay between retries.
    pub max_backoff: Duration,
    /// Longest a handler may run; past it the attempt counts as a transient failure.
    pub handler_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            handler_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before retrying after `failures` failures (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2_u32.saturating_pow(failures.saturating_sub(1));
        self.min_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Lanes of a subscription unless configured. One lane lets a busy consumer's messages gather
/// into batches (one commit for many); more lanes split them. Measured flat out on two cores:
/// PostgreSQL + JetStream 63 orders/s and 21 writing transactions per order with one lane, 60
/// and 28 with four; SQLite 62 against 54 (its writers take turns anyway). More lanes pay when
/// round trips to a distant database, not CPU, bound a consumer.
pub const DEFAULT_CONCURRENCY: usize = 1;

/// Messages handled in one transaction at most unless configured. Each may take up to two
/// subtransactions on PostgreSQL (its savepoint, and a command handler's); past 64 in one
/// transaction, every other session's snapshot checks slow down (the subtransaction cache
/// overflows).
pub const DEFAULT_BATCH: usize = 16;

/// How long a delivery stays with a consumer that neither settles nor renews it, unless
/// configured: a crashed process's messages are handled elsewhere (or after its restart) this
/// soon. A live one renews what it holds every third of it ([`crate::Delivery`]), so handlers
/// may take longer (up to [`RetryPolicy::handler_timeout`]).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(3);

/// A durable consumer of one subject for one module.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The module's schema (inbox and dead letters live there).
    pub schema: &'static str,
    /// Durable consumer name, unique per module and subject, e.g. `search-orders`.
    pub consumer: String,
    /// The subject.
    pub subject: String,
    /// Message names handled; others on the subject are acked and skipped. Empty: all.
    pub names: Vec<String>,
    /// Retries.
    pub retry: RetryPolicy,
    /// Inbox rows older than this are deleted (a redelivery can only come sooner).
    pub inbox_retention: Duration,
    /// Lanes handling different aggregates at the same time; `None`: [`DEFAULT_CONCURRENCY`].
    pub concurrency: Option<usize>,
    /// Most messages handled in one transaction (at least 1); `None`: the process's setting
    /// (`CONSUMER_BATCH`), else [`DEFAULT_BATCH`].
    pub batch: Option<usize>,
    /// How soon an unsettled, unrenewed delivery goes back to the broker.
    pub ack_wait: Duration,
    /// After a read that emptied the consumer, how long to wait before reading again. Zero
    /// (the default) for consumers others wait on; a consumer nobody waits on (a dashboard's
    /// record) lingers so that it reads, and commits, many messages at a time.
    pub linger: Duration,
    /// The handler's effects are safe to apply twice (inserts that ignore a duplicate,
    /// upserts that never move back): no inbox row and no savepoint per message — one
    /// statement less each, two in a batch. A failure rolls the whole batch back and its
    /// messages are handled one at a time.
    pub idempotent: bool,
    /// Shares its messages are split into by aggregate key when replicas share the consumer
    /// ([`run_shared`]): one durable consumer each, owned by one replica at a time. 1 (the
    /// default): the consumer whole, owned by one replica, the others standing by.
    pub parts: u32,
}

impl Subscription {
    /// Consumer `consumer` of `subject`, keeping its inbox in `schema`.
    pub fn new(
        schema: &'static str,
        consumer: impl Into<String>,
        subject: impl Into<String>,
    ) -> Subscription {
        Subscription {
            schema,
            consumer: consumer.into(),
            subject: subject.into(),
            names: Vec::new(),
            retry: RetryPolicy::default(),
            inbox_retention: Duration::from_secs(24 * 3600),
            concurrency: None,
            batch: None,
            ack_wait: DEFAULT_ACK_WAIT,
            linger: Duration::ZERO,
            idempotent: false,
            parts: 1,
        }
    }

    /// Declares the handler idempotent: see [`Subscription::idempotent`](field@Subscription::idempotent).
    #[must_use]
    pub fn idempotent(mut self) -> Subscription {
        self.idempotent = true;
        self
    }

    /// Waits `linger` after each read that found fewer than a batch: fewer, larger
    /// transactions for a consumer whose readers can wait that long.
    #[must_use]
    pub fn linger(mut self, linger: Duration) -> Subscription {
        self.linger = linger;
        self
    }

    /// Handles only `names`.
    #[must_use]
    pub fn accept(mut self, names: &[&str]) -> Subscription {
        self.names = names.iter().map(|name| (*name).to_owned()).collect();
        self
    }

    /// Uses `retry`.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Subscription {
        self.retry = retry;
        self
    }

    /// Handles up to `lanes` aggregates at once, and up to `batch` messages per transaction.
    #[must_use]
    pub fn parallel(mut self, lanes: usize, batch: usize) -> Subscription {
        self.concurrency = Some(lanes.max(1));
        self.batch = Some(batch.max(1));
        self
    }

    /// Handles up to `batch` messages per transaction, whatever the process's setting: for a
    /// consumer whose batches cost a few statements however large (an idempotent
    /// [`Handler::handle_batch`]).
    #[must_use]
    pub fn batch(mut self, batch: usize) -> Subscription {
        self.batch = Some(batch.max(1));
        self
    }

    /// Most messages per transaction.
    fn most(&self) -> usize {
        self.batch.unwrap_or(DEFAULT_BATCH).max(1)
    }

    /// The lanes it runs.
    fn lanes(&self) -> usize {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1)
    }

    fn accepts(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    /// The durable consumer of `part` (of [`Subscription::parts`]): the subscription's own
    /// name when it is not split, so an unsplit consumer keeps its place across versions.
    #[must_use]
    pub fn durable(&self, part: u32) -> String {
        if self.parts <= 1 {
            self.consumer.clone()
        } else {
            format!("{}-{part}of{}", self.consumer, self.parts)
        }
    }

    /// Every durable consumer it reads through: one per part.
    #[must_use]
    pub fn durables(&self) -> Vec<String> {
        (0..self.parts.max(1))
            .map(|part| self.durable(part))
            .collect()
    }

    fn spec(&self, part: u32) -> ConsumerSpec {
        ConsumerSpec {
            durable: self.durable(part),
            subject: self.subject.clone(),
            ack_wait: self.ack_wait,
        }
    }
}

/// Consumes `subscription` until `stop` is cancelled. Never returns early: broker and database
/// failures are logged and retried.
pub async fn run(
    db: Db,
    broker: Arc<dyn Broker>,
    subscription: Subscription,
    handler: Arc<dyn Handler>,
    stop: CancellationToken,
) {
    let runner = Arc::new(runner::Runner::new(
        db,
        broker.as_ref(),
        subscription,
        handler,
        None,
    ));
    let replays = tokio::spawn(runner.clone().maintain(broker.clone(), stop.clone()));
    runner.consume(broker, stop).await;
    let _ = replays.await;
}

/// Sleeps for `duration`; true if `stop` was cancelled meanwhile.
async fn sleep_or_stop(duration: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let delays: Vec<_> = (1..=6).map(|f| policy.backoff(f).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn lanes_default_to_one_and_a_setting_wins() {
        let sub = Subscription::new("shop", "shop-stores", "mallbots.stores.events.Store");
        assert_eq!(sub.lanes(), 1);
        assert_eq!(sub.parallel(2, 8).lanes(), 2);
    }
}
