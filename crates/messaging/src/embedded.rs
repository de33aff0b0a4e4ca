//! The embedded broker: a durable log in the application's own database, for running with
//! nothing else installed (and on PostgreSQL without NATS).
//!
//! Same semantics as the JetStream consumer we configure: a message id is stored once;
//! each durable consumer reads its subject from the start, in order; a delivery not acked
//! within `ack_wait` is delivered again; a nak redelivers after its delay. Publishers in this
//! process wake consumers at once; other processes' consumers notice within the poll interval.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use db::{AssertSqlSafe, Db, Migration, Migrations, Row as _, placeholders};
use tokio::sync::Notify;

use crate::broker::{Broker, BrokerError, Consumer, ConsumerSpec, Outgoing, PublishError};

mod consumer;

use consumer::{EmbeddedConsumer, subject_filter};

/// The schema the log lives in (attach it on SQLite).
pub const SCHEMA: &str = "broker";

/// Installs the log in [`SCHEMA`].
pub const MIGRATIONS: Migrations = Migrations {
    component: "embedded-broker",
    steps: &[
        Migration {
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
        },
        Migration {
            version: 2,
            description: "a wildcard consumer reads from its cursor, not the whole stream",
            // Without it a `prefix.>` consumer's reads (subject LIKE …) used only the stream's
            // part of the subject index: every read scanned and sorted the whole log.
            sql: "CREATE INDEX {index}messages_by_seq ON {on}messages (stream, seq);",
        },
    ],
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
    /// Consumers this process has opened (their leftovers are taken back once).
    opened: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Embedded {
    /// A broker keeping stream `stream` in `db` (run [`MIGRATIONS`] on [`SCHEMA`] first).
    pub fn new(db: Db, stream: &str) -> Embedded {
        Embedded {
            db,
            stream: Arc::from(stream),
            published: Arc::default(),
            opened: Arc::default(),
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

    /// Acknowledges the deliveries at `positions` ([`crate::Delivery::log_position`]) of
    /// consumer `durable` inside `tx`: committed with the handler's effects, so no ack can be
    /// lost between the commit and the settling (and no second write is spent on it).
    ///
    /// # Errors
    /// A database error: `tx` must then roll back.
    pub async fn ack_in(
        &self,
        tx: &mut db::Conn,
        durable: &str,
        positions: &[i64],
    ) -> Result<(), sqlx::Error> {
        if positions.is_empty() {
            return Ok(());
        }
        let mut delete = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM broker.deliveries WHERE stream = $1 AND consumer = $2 AND seq IN ({})",
            placeholders(3, positions.len())
        )))
        .bind(&*self.stream)
        .bind(durable);
        for seq in positions {
            delete = delete.bind(*seq);
        }
        delete.execute(&mut *tx).await?;
        Ok(())
    }

    /// Restarts the lease of consumer `durable`'s deliveries at `positions`: they stay out of
    /// other claims for `ack_wait` from now.
    async fn renew(
        &self,
        durable: &str,
        positions: &[i64],
        ack_wait: Duration,
    ) -> Result<(), sqlx::Error> {
        let mut update = sqlx::query(AssertSqlSafe(format!(
            "UPDATE broker.deliveries SET visible_at = $3 WHERE stream = $1 AND consumer = $2 AND seq IN ({})",
            placeholders(4, positions.len())
        )))
        .bind(&*self.stream)
        .bind(durable)
        .bind(db::now_micros() + consumer::micros(ack_wait));
        for seq in positions {
            update = update.bind(*seq);
        }
        self.db.write(update).await?;
        Ok(())
    }

    /// On SQLite, where one process owns the database, the deliveries of `durable` left
    /// unsettled by a previous run (it crashed) are made due at once, the first time this process
    /// opens the consumer; on PostgreSQL, where replicas share the log, their leases run out.
    async fn take_back(&self, durable: &str) -> Result<(), sqlx::Error> {
        if self.db.backend() != db::Backend::Sqlite {
            return Ok(());
        }
        let first = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(durable.to_owned());
        if first {
            let taken = self
                .db
                .write(
                    sqlx::query(
                        "UPDATE broker.deliveries SET visible_at = 0 WHERE stream = $1 AND consumer = $2",
                    )
                    .bind(&*self.stream)
                    .bind(durable),
                )
                .await?
                .rows_affected();
            if taken > 0 {
                tracing::info!(
                    consumer = durable,
                    deliveries = taken,
                    "taking back deliveries a previous run left unsettled"
                );
            }
        }
        Ok(())
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
        self.take_back(&spec.durable).await?;
        Ok(Box::new(EmbeddedConsumer::new(self.clone(), spec.clone())))
    }

    async fn take_over(&self, spec: &ConsumerSpec) -> Result<(), BrokerError> {
        let mut tx = self.db.begin().await?;
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM broker.consumers WHERE stream = $1")
                .bind(&*self.stream)
                .fetch_all(&mut *tx)
                .await?;
        // What a consumer has surely settled: up to its cursor, short of what it still holds.
        let floor = "SELECT MIN(c.cursor, COALESCE((SELECT MIN(d.seq) - 1 FROM broker.deliveries d
                       WHERE d.stream = c.stream AND d.consumer = c.name), c.cursor))
                     FROM broker.consumers c WHERE c.stream = $1 AND c.name = $2";
        let floor = match self.db.backend() {
            db::Backend::Sqlite => floor.to_owned(),
            db::Backend::Postgres => floor.replacen("MIN(c.cursor,", "LEAST(c.cursor,", 1),
        };
        let mut own = None;
        let mut theirs: Option<i64> = None;
        for name in std::iter::once(spec.durable.as_str())
            .chain(crate::broker::siblings(&spec.durable, &names))
        {
            let settled: Option<i64> = sqlx::query_scalar(AssertSqlSafe(floor.clone()))
                .bind(&*self.stream)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            match settled {
                Some(settled) if name == spec.durable => own = Some(settled),
                Some(settled) => theirs = Some(theirs.map_or(settled, |least| least.min(settled))),
                None => {}
            }
        }
        let start = own.max(theirs).unwrap_or(0);
        sqlx::query(
            "INSERT INTO broker.consumers (stream, name, subject, cursor) VALUES ($1, $2, $3, $4)
             ON CONFLICT (stream, name) DO UPDATE SET subject = excluded.subject,
                 cursor = CASE WHEN broker.consumers.cursor < excluded.cursor
                     THEN excluded.cursor ELSE broker.consumers.cursor END",
        )
        .bind(&*self.stream)
        .bind(&spec.durable)
        .bind(&spec.subject)
        .bind(start)
        .execute(&mut *tx)
        .await?;
        // Below the new cursor, settled by the others; above it, due now.
        sqlx::query(
            "DELETE FROM broker.deliveries WHERE stream = $1 AND consumer = $2 AND seq <= $3",
        )
        .bind(&*self.stream)
        .bind(&spec.durable)
        .bind(start)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE broker.deliveries SET visible_at = 0 WHERE stream = $1 AND consumer = $2",
        )
        .bind(&*self.stream)
        .bind(&spec.durable)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
