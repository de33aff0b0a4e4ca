//! The embedded broker: a durable log in the application's own database, for running with
//! nothing else installed (and on PostgreSQL without NATS).
//!
//! Same semantics as the JetStream consumer we configure: a message id is stored once;
//! each durable consumer reads its subject from the start, in order; a delivery not acked
//! within `ack_wait` is delivered again; a nak redelivers after its delay. Publishers in this
//! process wake consumers at once; other processes' consumers notice within the poll interval.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use db::{AssertSqlSafe, Backend, Db, Migration, Migrations, Row as _};
use tokio::sync::Notify;

use crate::broker::{
    Broker, BrokerError, Consumer, ConsumerSpec, Delivery, Outgoing, PublishError,
};

/// The schema the log lives in (attach it on SQLite).
pub const SCHEMA: &str = "broker";

/// Installs the log in [`SCHEMA`].
pub const MIGRATIONS: Migrations = Migrations {
    component: "embedded-broker",
    steps: &[Migration {
        version: 1,
        description: "message log, consumers, deliveries",
        sql: "
            CREATE TABLE {schema}.messages (
                seq {serial},
                stream TEXT NOT NULL,
                subject TEXT NOT NULL,
                msg_id TEXT NOT NULL,
                body {bytes} NOT NULL,
                published_at BIGINT NOT NULL,
                UNIQUE (stream, msg_id)
            );
            CREATE INDEX {index}messages_by_subject ON {on}messages (stream, subject, seq);
            CREATE TABLE {schema}.consumers (
                stream TEXT NOT NULL,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                cursor BIGINT NOT NULL,
                PRIMARY KEY (stream, name)
            );
            CREATE TABLE {schema}.deliveries (
                stream TEXT NOT NULL,
                consumer TEXT NOT NULL,
                seq BIGINT NOT NULL,
                attempts INTEGER NOT NULL,
                visible_at BIGINT NOT NULL,
                PRIMARY KEY (stream, consumer, seq)
            );",
    }],
};

/// How often an idle consumer looks for messages published by other processes.
const POLL: Duration = Duration::from_millis(250);

/// The embedded broker over a [`Db`] whose [`SCHEMA`] is migrated.
#[derive(Debug, Clone)]
pub struct Embedded {
    db: Db,
    stream: Arc<str>,
    /// Wakes the consumers of one subject (`>`: consumers of a wildcard, woken by any).
    published: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>>,
}

impl Embedded {
    /// A broker keeping stream `stream` in `db` (run [`MIGRATIONS`] on [`SCHEMA`] first).
    pub fn new(db: Db, stream: &str) -> Embedded {
        Embedded {
            db,
            stream: Arc::from(stream),
            published: Arc::default(),
        }
    }

    /// The wake-up of consumers of `subject` (a filter ending in `>` shares `>`).
    fn wake(&self, subject: &str) -> Arc<Notify> {
        let key = if subject.ends_with('>') { ">" } else { subject };
        let mut wakes = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        wakes.entry(key.to_owned()).or_default().clone()
    }

    /// The database the log lives in.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Appends `messages` inside `tx` (a message id already stored is skipped); call
    /// [`Embedded::published`] once `tx` has committed.
    ///
    /// # Errors
    /// A database error: `tx` must then roll back.
    pub async fn append_in(
        &self,
        tx: &mut db::Conn,
        messages: &[Outgoing<'_>],
    ) -> Result<(), sqlx::Error> {
        let now = db::now_micros();
        for message in messages {
            sqlx::query(
                "INSERT INTO broker.messages (stream, subject, msg_id, body, published_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (stream, msg_id) DO NOTHING",
            )
            .bind(&*self.stream)
            .bind(message.subject)
            .bind(message.id)
            .bind(message.body.to_vec())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Wakes the consumers of what was just appended (and committed).
    pub fn published(&self, messages: &[Outgoing<'_>]) {
        let subjects: std::collections::BTreeSet<&str> =
            messages.iter().map(|m| m.subject).collect();
        for subject in subjects.into_iter().chain([">"]) {
            self.wake(subject).notify_waiters();
        }
    }

    /// Deletes messages every consumer has read and settled that are older than `age`.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge(&self, age: Duration) -> Result<u64, sqlx::Error> {
        let cutoff = db::now_micros() - i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
        let deleted = self
            .db
            .write(
                sqlx::query(
                    "DELETE FROM broker.messages WHERE stream = $1 AND published_at < $2
             AND seq <= (SELECT COALESCE(MIN(cursor), 0) FROM broker.consumers WHERE stream = $1)
             AND seq NOT IN (SELECT seq FROM broker.deliveries WHERE stream = $1)",
                )
                .bind(&*self.stream)
                .bind(cutoff),
            )
            .await?;
        Ok(deleted.rows_affected())
    }
}

#[async_trait]
impl Broker for Embedded {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Result<(), PublishError> {
        let failed = |source: sqlx::Error| PublishError {
            stored: 0,
            source: source.into(),
        };
        let mut tx = self.db.begin().await.map_err(failed)?;
        self.append_in(&mut tx, messages).await.map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        self.published(messages);
        Ok(())
    }

    fn embedded(&self) -> Option<&Embedded> {
        Some(self)
    }

    async fn consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BrokerError> {
        self.db.write(sqlx::query(
            "INSERT INTO broker.consumers (stream, name, subject, cursor) VALUES ($1, $2, $3, 0)
             ON CONFLICT (stream, name) DO UPDATE SET subject = excluded.subject",
        )
        .bind(&*self.stream)
        .bind(&spec.durable)
        .bind(&spec.subject)
        )
        .await?;
        Ok(Box::new(EmbeddedConsumer {
            broker: self.clone(),
            spec: spec.clone(),
        }))
    }

    async fn check(&self) -> Result<(), String> {
        self.db.ping(Duration::from_secs(2)).await
    }

    async fn rewind(&self, durable: &str) -> Result<(), BrokerError> {
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE broker.consumers SET cursor = 0 WHERE stream = $1 AND name = $2")
            .bind(&*self.stream)
            .bind(durable)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM broker.deliveries WHERE stream = $1 AND consumer = $2")
            .bind(&*self.stream)
            .bind(durable)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lag(&self, durable: &str) -> Result<Option<u64>, BrokerError> {
        let Some(row) = sqlx::query(
            "SELECT subject, cursor FROM broker.consumers WHERE stream = $1 AND name = $2",
        )
        .bind(&*self.stream)
        .bind(durable)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let (subject, cursor): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        let (filter, pattern) = subject_filter(&subject);
        let count: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT (SELECT COUNT(*) FROM broker.messages WHERE stream = $1 AND subject {filter} AND seq > $4)
                  + (SELECT COUNT(*) FROM broker.deliveries WHERE stream = $1 AND consumer = $2)"
        )))
        .bind(&*self.stream)
        .bind(durable)
        .bind(pattern)
        .bind(cursor)
        .fetch_one(self.db.pool())
        .await?
        .try_get(0)?;
        Ok(Some(u64::try_from(count).unwrap_or(0)))
    }
}

struct EmbeddedConsumer {
    broker: Embedded,
    spec: ConsumerSpec,
}

impl EmbeddedConsumer {
    fn micros(duration: Duration) -> i64 {
        i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
    }

    /// Whether anything is there to claim, read without taking the write lock (so idle
    /// consumers woken by a publish on SQLite do not queue for it).
    async fn anything_due(&self) -> Result<bool, sqlx::Error> {
        let (filter, pattern) = subject_filter(&self.spec.subject);
        let sql = format!(
            "SELECT 1 FROM broker.deliveries WHERE stream = $1 AND consumer = $2 AND visible_at <= $4
             UNION ALL
             SELECT 1 FROM broker.messages WHERE stream = $1 AND subject {filter}
               AND seq > (SELECT cursor FROM broker.consumers WHERE stream = $1 AND name = $2)
             LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&*self.broker.stream)
            .bind(&self.spec.durable)
            .bind(pattern)
            .bind(db::now_micros())
            .fetch_optional(self.broker.db.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Claims the next due redelivery, else the next new message, in one transaction.
    async fn claim(&self) -> Result<Option<EmbeddedDelivery>, sqlx::Error> {
        if !self.anything_due().await? {
            return Ok(None);
        }
        let broker = &self.broker;
        let (stream, name) = (&*broker.stream, self.spec.durable.as_str());
        // On PostgreSQL replicas of one consumer may race; SQLite has one writer at a time.
        let lock = match broker.db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let now = db::now_micros();
        let visible_at = now + Self::micros(self.spec.ack_wait);
        let mut tx = broker.db.begin().await?;

        let due = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, attempts FROM broker.deliveries
             WHERE stream = $1 AND consumer = $2 AND visible_at <= $3 ORDER BY seq LIMIT 1{lock}"
        )))
        .bind(stream)
        .bind(name)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let (seq, attempt) = if let Some(row) = due {
            let (seq, attempts): (i64, i32) = (row.try_get(0)?, row.try_get(1)?);
            sqlx::query(
                "UPDATE broker.deliveries SET attempts = attempts + 1, visible_at = $4
                 WHERE stream = $1 AND consumer = $2 AND seq = $3",
            )
            .bind(stream)
            .bind(name)
            .bind(seq)
            .bind(visible_at)
            .execute(&mut *tx)
            .await?;
            (seq, attempts + 1)
        } else {
            let cursor_lock = broker.db.backend().row_lock();
            let cursor: i64 = sqlx::query(AssertSqlSafe(format!(
                "SELECT cursor FROM broker.consumers WHERE stream = $1 AND name = $2{cursor_lock}"
            )))
            .bind(stream)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            let (filter, pattern) = subject_filter(&self.spec.subject);
            let next = sqlx::query(AssertSqlSafe(format!(
                "SELECT seq FROM broker.messages WHERE stream = $1 AND seq > $2 AND subject {filter} ORDER BY seq LIMIT 1"
            )))
            .bind(stream)
            .bind(cursor)
            .bind(pattern)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = next else { return Ok(None) };
            let seq: i64 = row.try_get(0)?;
            sqlx::query("UPDATE broker.consumers SET cursor = $3 WHERE stream = $1 AND name = $2")
                .bind(stream)
                .bind(name)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO broker.deliveries (stream, consumer, seq, attempts, visible_at) VALUES ($1, $2, $3, 1, $4)",
            )
            .bind(stream)
            .bind(name)
            .bind(seq)
            .bind(visible_at)
            .execute(&mut *tx)
            .await?;
            (seq, 1)
        };
        let message = sqlx::query("SELECT subject, body FROM broker.messages WHERE seq = $1")
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(EmbeddedDelivery {
            broker: broker.clone(),
            consumer: self.spec.durable.clone(),
            ack_wait: self.spec.ack_wait,
            seq,
            subject: message.try_get(0)?,
            body: message.try_get(1)?,
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        }))
    }

    /// When the earliest pending redelivery of this consumer becomes due, if any.
    async fn next_due(&self) -> Result<Option<i64>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT MIN(visible_at) FROM broker.deliveries WHERE stream = $1 AND consumer = $2",
        )
        .bind(&*self.broker.stream)
        .bind(&self.spec.durable)
        .fetch_one(self.broker.db.pool())
        .await?;
        row.try_get::<Option<i64>, _>(0)
    }
}

/// `= $3` for a subject, `LIKE $3` for a `prefix.>` wildcard.
fn subject_filter(subject: &str) -> (&'static str, String) {
    match subject.strip_suffix('>') {
        Some(prefix) => ("LIKE $3", format!("{prefix}%")),
        None => ("= $3", subject.to_owned()),
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn next(&mut self) -> Result<Box<dyn Delivery>, BrokerError> {
        loop {
            // Registered (enabled) before looking, so a publish between the look and the wait
            // still wakes us: `notify_waiters` only wakes futures already registered.
            let wake = self.broker.wake(&self.spec.subject);
            let published = wake.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            if let Some(delivery) = self.claim().await? {
                return Ok(Box::new(delivery));
            }
            let wait = match self.next_due().await? {
                Some(due) => {
                    Duration::from_micros(u64::try_from(due - db::now_micros()).unwrap_or(0))
                        .min(POLL)
                }
                None => POLL,
            };
            tokio::select! {
                () = published => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

struct EmbeddedDelivery {
    broker: Embedded,
    consumer: String,
    ack_wait: Duration,
    seq: i64,
    subject: String,
    body: Vec<u8>,
    attempt: u32,
}

impl EmbeddedDelivery {
    async fn settle(&self, visible_in: Option<Duration>) -> Result<(), BrokerError> {
        let query = match visible_in {
            None => sqlx::query(
                "DELETE FROM broker.deliveries WHERE stream = $1 AND consumer = $2 AND seq = $3",
            ),
            Some(_) => sqlx::query(
                "UPDATE broker.deliveries SET visible_at = $4 WHERE stream = $1 AND consumer = $2 AND seq = $3",
            ),
        };
        let query = query
            .bind(&*self.broker.stream)
            .bind(&self.consumer)
            .bind(self.seq);
        let query = match visible_in {
            Some(delay) => query.bind(db::now_micros() + EmbeddedConsumer::micros(delay)),
            None => query,
        };
        self.broker.db.write(query).await?;
        if visible_in.is_some() {
            // A consumer waiting in `next` recomputes when to look again.
            self.broker.wake(&self.subject).notify_waiters();
        }
        Ok(())
    }
}

#[async_trait]
impl Delivery for EmbeddedDelivery {
    fn subject(&self) -> &str {
        &self.subject
    }

    fn body(&self) -> &[u8] {
        &self.body
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(&self) -> Result<(), BrokerError> {
        self.settle(None).await
    }

    async fn nak(&self, delay: Duration) -> Result<(), BrokerError> {
        self.settle(Some(delay)).await
    }

    async fn in_progress(&self) -> Result<(), BrokerError> {
        self.settle(Some(self.ack_wait)).await
    }
}
