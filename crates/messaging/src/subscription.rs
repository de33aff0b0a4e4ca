//! Subscriptions: a durable consumer whose messages are handled exactly once per consumer.
//!
//! For each delivery: decode → (not for us: ack) → one transaction with the inbox row and the
//! handler's effects → commit → ack. A duplicate finds its inbox row and is acked quietly.
//! A transient failure is redelivered after an exponential back-off; a permanent one (bad
//! bytes, a payload that does not decode, a handler that says so) or the last allowed attempt
//! goes to the dead-letter table, then is acked. Messages about one aggregate keep their order:
//! while one is waiting for a retry, later ones with the same key wait behind it; other
//! aggregates' messages keep flowing.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use db::{AssertSqlSafe, Db, Row as _};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    Envelope, Incoming,
    broker::{Broker, ConsumerSpec, Delivery},
};

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
/// row, calls this, commits and acks; the handler never does any of that.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies `message`'s effects through `tx`.
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError>;

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
        }
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

    fn accepts(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    fn spec(&self) -> ConsumerSpec {
        // Redelivery after a crash: a little longer than a handler may take.
        let ack_wait = self.retry.handler_timeout + Duration::from_secs(5);
        ConsumerSpec {
            durable: self.consumer.clone(),
            subject: self.subject.clone(),
            ack_wait,
        }
    }
}

/// The labels of one subscription's metrics for one message name.
struct Counted([(&'static str, String); 3]);

impl Counted {
    /// The families every subscription reports, started at zero for the names it accepts so
    /// a dashboard shows "no dead letters" rather than "no data".
    const COUNTERS: [&'static str; 5] = [
        "messages_received_total",
        "messages_handled_total",
        "messages_duplicates_total",
        "messages_failed_total",
        "messages_dead_lettered_total",
    ];

    fn new(sub: &Subscription, name: &str) -> Counted {
        Counted([
            ("module", sub.schema.to_owned()),
            ("consumer", sub.consumer.clone()),
            ("name", name.to_owned()),
        ])
    }

    fn count(&self, family: &'static str) {
        metrics::counter!(family, &self.0).increment(1);
    }

    fn record(&self, family: &'static str, elapsed: Duration) {
        metrics::histogram!(family, &self.0).record(elapsed.as_secs_f64());
    }

    fn start(sub: &Subscription) {
        for name in &sub.names {
            let labels = Counted::new(sub, name);
            for family in Counted::COUNTERS {
                metrics::counter!(family, &labels.0).increment(0);
            }
        }
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Handled,
    Duplicate,
}

impl Outcome {
    /// The counter this outcome adds to.
    fn counter(self) -> &'static str {
        match self {
            Outcome::Handled => "messages_handled_total",
            Outcome::Duplicate => "messages_duplicates_total",
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
    let insert_inbox = Arc::from(format!(
        "INSERT INTO {}.inbox (consumer, id, name, subject, received_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (consumer, id) DO NOTHING",
        subscription.schema
    ));
    Counted::start(&subscription);
    let runner = Arc::new(Runner {
        db,
        subscription,
        handler,
        insert_inbox,
        rewind: tokio::sync::Notify::new(),
    });
    let replays = tokio::spawn(runner.clone().replay_loop(broker.clone(), stop.clone()));
    runner.consume(broker, stop).await;
    let _ = replays.await;
}

struct Runner {
    db: Db,
    subscription: Subscription,
    handler: Arc<dyn Handler>,
    /// Formatted once: it runs for every message.
    insert_inbox: Arc<str>,
    /// Raised when an operator asked for this consumer to be rewound.
    rewind: tokio::sync::Notify,
}

/// In-memory ordering state of one consumer loop.
#[derive(Default)]
struct Order {
    /// Aggregate key → id of its message waiting for a retry.
    blocked: HashMap<String, String>,
    /// Message id → deliveries spent waiting behind another message (not failures).
    deferred: HashMap<String, u32>,
}

impl Runner {
    async fn consume(&self, broker: Arc<dyn Broker>, stop: CancellationToken) {
        let sub = &self.subscription;
        let mut backoff = Duration::from_millis(100);
        let mut order = Order::default();
        let spec = sub.spec();
        'connect: loop {
            let mut consumer = tokio::select! {
                () = stop.cancelled() => return,
                consumer = broker.consumer(&spec) => match consumer {
                    Ok(consumer) => consumer,
                    Err(error) => {
                        tracing::warn!(consumer = %sub.consumer, %error, retry_in = ?backoff, "cannot open consumer");
                        if sleep_or_stop(backoff, &stop).await { return; }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue 'connect;
                    }
                },
            };
            backoff = Duration::from_millis(100);
            loop {
                let delivery = tokio::select! {
                    () = stop.cancelled() => return,
                    () = self.rewind.notified() => {
                        // Between two messages: nothing of this consumer is in flight.
                        drop(consumer);
                        if let Err(error) = self.rewind_now(broker.as_ref()).await {
                            tracing::warn!(consumer = %sub.consumer, error = format!("{error:#}"), "rewinding failed; will try again");
                        }
                        order = Order::default();
                        continue 'connect;
                    }
                    delivery = consumer.next() => delivery,
                };
                match delivery {
                    Ok(delivery) => self.process(delivery.as_ref(), &mut order).await,
                    Err(error) => {
                        tracing::warn!(consumer = %sub.consumer, %error, "consumer failed; reopening");
                        if sleep_or_stop(backoff, &stop).await {
                            return;
                        }
                        continue 'connect;
                    }
                }
            }
        }
    }

    async fn process(&self, delivery: &dyn Delivery, order: &mut Order) {
        let sub = &self.subscription;
        let envelope = match Envelope::decode(delivery.body()) {
            Ok(envelope) => envelope,
            Err(error) => {
                let id = format!("undecodable-{}", uuid::Uuid::new_v4());
                let dead = DeadLetterRecord {
                    id: &id,
                    name: "",
                    subject: delivery.subject(),
                    body: delivery.body(),
                    error: &error.to_string(),
                    attempts: delivery.attempt(),
                };
                self.dead_letter(delivery, dead).await;
                return;
            }
        };
        if !sub.accepts(&envelope.name) {
            if proto::spec(&envelope.name).is_none() {
                tracing::warn!(consumer = %sub.consumer, name = %envelope.name, id = %envelope.id, "unknown message name; skipped");
            }
            settle(delivery.ack().await, &sub.consumer);
            return;
        }
        let incoming = Incoming {
            subject: delivery.subject().to_owned(),
            envelope,
            attempt: delivery.attempt(),
        };
        let span = tracing::info_span!("handle", otel.name = format!("handle {}", incoming.name()),
            otel.kind = "consumer", module = sub.schema, consumer = %sub.consumer,
            messaging.message.id = %incoming.id(), attempt = incoming.attempt);
        telemetry::adopt(&span, &telemetry::MapRef(&incoming.envelope.metadata));
        self.deliver(delivery, incoming, order)
            .instrument(span)
            .await;
    }

    /// Handles a decoded message meant for this subscription and settles its delivery.
    async fn deliver(&self, delivery: &dyn Delivery, incoming: Incoming, order: &mut Order) {
        let sub = &self.subscription;
        let counted = Counted::new(sub, incoming.name());
        counted.count("messages_received_total");
        let id = incoming.id().to_owned();
        let key = incoming.key().map(str::to_owned);
        if let Some(key) = &key
            && let Some(blocker) = order.blocked.get(key)
            && *blocker != id
        {
            *order.deferred.entry(id).or_default() += 1;
            settle(delivery.nak(sub.retry.min_backoff).await, &sub.consumer);
            return;
        }
        let deferred = order.deferred.get(&id).copied().unwrap_or(0);
        let failures_before = delivery
            .attempt()
            .saturating_sub(1)
            .saturating_sub(deferred);

        let started = std::time::Instant::now();
        let outcome = match tokio::time::timeout(
            sub.retry.handler_timeout,
            self.handle_once(&incoming),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(HandlerError::Transient(anyhow::anyhow!(
                "handler timed out after {:?}",
                sub.retry.handler_timeout
            ))),
        };
        let unblock = |order: &mut Order| {
            order.deferred.remove(&id);
            if let Some(key) = &key
                && order.blocked.get(key) == Some(&id)
            {
                order.blocked.remove(key);
            }
        };
        counted.record("message_handler_duration_seconds", started.elapsed());
        counted.count(match &outcome {
            Ok(outcome) => outcome.counter(),
            Err(_) => "messages_failed_total",
        });
        match outcome {
            Ok(Outcome::Handled | Outcome::Duplicate) => {
                settle(delivery.ack().await, &sub.consumer);
                unblock(order);
            }
            Err(HandlerError::Transient(error)) if failures_before + 1 < sub.retry.max_attempts => {
                let delay = sub.retry.backoff(failures_before + 1);
                tracing::warn!(consumer = %sub.consumer, id = %id, name = %incoming.name(), attempt = failures_before + 1, retry_in = ?delay, error = format!("{error:#}"), "handler failed; will retry");
                settle(delivery.nak(delay).await, &sub.consumer);
                if let Some(key) = key {
                    order.blocked.insert(key, id);
                }
            }
            Err(HandlerError::Transient(error) | HandlerError::Permanent(error)) => {
                let error = format!("{error:#}");
                let dead = DeadLetterRecord {
                    id: &id,
                    name: incoming.name(),
                    subject: &incoming.subject,
                    body: delivery.body(),
                    error: &error,
                    attempts: failures_before + 1,
                };
                self.dead_letter(delivery, dead).await;
                counted.count("messages_dead_lettered_total");
                unblock(order);
            }
        }
    }

    /// The inbox row and the handler's effects, in one transaction.
    async fn handle_once(&self, incoming: &Incoming) -> Result<Outcome, HandlerError> {
        let sub = &self.subscription;
        let mut tx = self.db.begin().await?;
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
            tx.rollback().await?;
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(&mut tx, incoming).await?;
        tx.commit().await?;
        Ok(Outcome::Handled)
    }

    /// Records the message as dead and acks it; if the record cannot be written, the message
    /// is left for redelivery instead (never lost).
    async fn dead_letter(&self, delivery: &dyn Delivery, dead: DeadLetterRecord<'_>) {
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

    /// Empties the handler's model and this consumer's inbox, then moves the consumer back to
    /// the start of the stream. Each step may be repeated: a crash part-way leaves the request
    /// pending, and the next attempt starts over.
    async fn rewind_now(&self, broker: &dyn Broker) -> anyhow::Result<()> {
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
        broker.rewind(&sub.consumer).await?;
        crate::rewind::started(&self.db, sub.schema, &sub.consumer).await?;
        tracing::info!(consumer = %sub.consumer, "rewound to the start of the stream; rebuilding");
        Ok(())
    }

    /// Starts a requested rewind (through the consume loop), and marks a started one done once
    /// the consumer has caught up.
    async fn follow_rewind(&self, broker: &dyn Broker) -> anyhow::Result<()> {
        let sub = &self.subscription;
        match crate::rewind::status(&self.db, sub.schema, &sub.consumer).await? {
            Some(status) if status.started_at.is_none() => self.rewind.notify_one(),
            Some(status)
                if status.done_at.is_none() && broker.lag(&sub.consumer).await? == Some(0) =>
            {
                crate::rewind::finish(&self.db, sub.schema, &sub.consumer, "rebuilt").await?;
                tracing::info!(consumer = %sub.consumer, "rebuilt from the stream");
            }
            _ => {}
        }
        Ok(())
    }

    /// Re-delivers dead letters an operator asked to replay, follows rewinds, and purges old
    /// inbox rows.
    async fn replay_loop(self: Arc<Self>, broker: Arc<dyn Broker>, stop: CancellationToken) {
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

    async fn replay_requested(&self) -> Result<(), sqlx::Error> {
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
                    self.handle_once(&incoming).await
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

struct DeadLetterRecord<'a> {
    id: &'a str,
    name: &'a str,
    subject: &'a str,
    body: &'a [u8],
    error: &'a str,
    attempts: u32,
}

fn settle(result: Result<(), crate::BrokerError>, consumer: &str) {
    // A lost ack or nak only means the message comes back; the inbox absorbs it.
    if let Err(error) = result {
        tracing::warn!(consumer, %error, "could not settle a delivery; it will be redelivered");
    }
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
}
