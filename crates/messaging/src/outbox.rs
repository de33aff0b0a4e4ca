//! The transactional outbox: [`Outbox::stage`] writes messages in the business transaction;
//! [`relay`] publishes them, in staging order, after they commit.
//!
//! The relay is woken right after a commit — on PostgreSQL by `NOTIFY` (delivered at commit,
//! to every process), on SQLite by an in-process signal raised while staging; its next read
//! then waits for the staging transaction's write lock, so it sees the rows once committed.
//! It polls only as a fallback. It publishes a batch, awaits every broker ack, then marks the
//! rows, many batches' worth at once; a crash in between republishes them, and the broker and
//! inboxes absorb the duplicates. On PostgreSQL one replica at a time relays a given outbox
//! (advisory lock), which keeps the order. Errors are logged and retried with back-off; the
//! relay only stops at shutdown.

use std::sync::Arc;

use db::{AssertSqlSafe, Db, Row as _};
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::Message;

mod postgres;
mod publish;
mod relay;

pub use relay::{RelayConfig, relay};

/// A module's outbox, `<schema>.outbox`: the only way a module sends anything.
#[derive(Debug, Clone)]
pub struct Outbox {
    schema: &'static str,
    /// The statements of this outbox, formatted once: `stage` runs on every business write.
    insert: Arc<str>,
    /// PostgreSQL: the insert that also notifies the relays, one round trip instead of two.
    insert_and_notify: Arc<str>,
    /// The relay's read: unpublished rows after `$1`, at most `$2`.
    select: Arc<str>,
    channel: Arc<str>,
    staged: Arc<Notify>,
}

impl Outbox {
    /// The outbox in `schema` (its tables come from [`crate::MIGRATIONS`]).
    pub fn new(schema: &'static str) -> Outbox {
        Outbox {
            schema,
            insert: Arc::from(format!(
                "INSERT INTO {schema}.outbox (id, name, subject, body, staged_at, traceparent) VALUES ($1, $2, $3, $4, $5, $6)"
            )),
            insert_and_notify: Arc::from(format!(
                "WITH wake AS (SELECT pg_notify($7, ''))
                 INSERT INTO {schema}.outbox (id, name, subject, body, staged_at, traceparent)
                 SELECT $1, $2, $3, $4, $5, $6 FROM wake"
            )),
            select: Arc::from(format!(
                "SELECT seq, id, name, subject, body, traceparent FROM {schema}.outbox
                 WHERE published_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2"
            )),
            channel: Arc::from(format!("mallbots_outbox_{schema}")),
            staged: Arc::new(Notify::new()),
        }
    }

    /// The schema.
    pub fn schema(&self) -> &'static str {
        self.schema
    }

    /// Writes `messages` inside `tx`; they are published after `tx` commits, never if it
    /// rolls back. Each carries the current trace context (metadata `traceparent`), so its
    /// handling joins the trace of what staged it.
    ///
    /// # Errors
    /// A database error (the caller's transaction must then roll back).
    pub async fn stage(
        &self,
        tx: &mut db::Conn,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<(), sqlx::Error> {
        let span = tracing::info_span!("stage", module = self.schema);
        self.stage_all(tx, messages).instrument(span).await
    }

    async fn stage_all(
        &self,
        tx: &mut db::Conn,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<(), sqlx::Error> {
        let postgres = db::Backend::of(tx) == db::Backend::Postgres;
        let mut any = false;
        for mut message in messages {
            telemetry::inject(&mut telemetry::Map(&mut message.envelope.metadata));
            let traceparent = message
                .envelope
                .metadata
                .get(telemetry::TRACEPARENT)
                .cloned();
            // On PostgreSQL the first row also notifies: delivered when (and only if) the
            // transaction commits, to every process's relay of this outbox.
            let notify = postgres && !any;
            let sql = if notify {
                &self.insert_and_notify
            } else {
                &self.insert
            };
            let mut insert = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(message.id())
                .bind(message.name())
                .bind(&message.subject)
                .bind(message.envelope.encode())
                .bind(db::now_micros())
                .bind(traceparent);
            if notify {
                insert = insert.bind(&*self.channel);
            }
            insert.execute(&mut *tx).await?;
            any = true;
        }
        if any && !postgres {
            self.staged.notify_one();
        }
        Ok(())
    }
}

impl Outbox {
    /// Deletes every message about aggregate `key` the outbox still keeps, published or not:
    /// when a person asks to be forgotten, what was published stays only as long as the
    /// broker keeps it (its retention). Reads the whole outbox — erasure is rare, the outbox
    /// small (published rows are purged after their retention).
    ///
    /// # Errors
    /// A database error.
    pub async fn forget(&self, tx: &mut db::Conn, key: &str) -> Result<u64, sqlx::Error> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, body FROM {}.outbox",
            self.schema
        )))
        .fetch_all(&mut *tx)
        .await?;
        let delete = format!("DELETE FROM {}.outbox WHERE seq = $1", self.schema);
        let mut forgotten = 0;
        for row in rows {
            let body: Vec<u8> = row.try_get(1)?;
            let about = crate::Envelope::decode(&body).ok().and_then(|envelope| {
                envelope
                    .metadata
                    .get(crate::message::AGGREGATE_ID_KEY)
                    .cloned()
            });
            if about.as_deref() == Some(key) {
                let seq: i64 = row.try_get(0)?;
                forgotten += sqlx::query(AssertSqlSafe(delete.clone()))
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
        }
        Ok(forgotten)
    }
}

/// How far an outbox's relay is behind, for `mallbots outbox status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Messages staged and not yet published.
    pub pending: i64,
    /// When the oldest of them was staged (µs since the epoch).
    pub oldest_pending_at: Option<i64>,
    /// Messages published and still kept.
    pub published: i64,
}

/// What the outbox of module `schema` has not yet published (read through the index of
/// unpublished rows, so it costs what is pending, not what is kept): an operator's live view.
///
/// # Errors
/// A database error, or `schema` is not a plain identifier.
pub async fn depth(db: &Db, schema: &str) -> Result<Depth, sqlx::Error> {
    if !db::is_valid_schema(schema) {
        return Err(sqlx::Error::Protocol(format!(
            "{schema:?} is not a schema name"
        )));
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*), MIN(staged_at) FROM {schema}.outbox WHERE published_at IS NULL"
    )))
    .fetch_one(db.pool())
    .await?;
    Ok(Depth {
        pending: row.try_get(0)?,
        oldest_pending_at: row.try_get(1)?,
    })
}

/// What an outbox has not yet published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    /// Messages staged and not yet published.
    pub pending: i64,
    /// When the oldest of them was staged (µs since the epoch).
    pub oldest_pending_at: Option<i64>,
}

/// The outbox of module `schema`.
///
/// # Errors
/// A database error, or `schema` is not a plain identifier.
pub async fn status(db: &Db, schema: &str) -> Result<Status, sqlx::Error> {
    if !db::is_valid_schema(schema) {
        return Err(sqlx::Error::Protocol(format!(
            "{schema:?} is not a schema name"
        )));
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) FILTER (WHERE published_at IS NULL), MIN(staged_at) FILTER (WHERE published_at IS NULL),
                COUNT(*) FILTER (WHERE published_at IS NOT NULL)
         FROM {schema}.outbox"
    )))
    .fetch_one(db.pool())
    .await?;
    Ok(Status {
        pending: row.try_get(0)?,
        oldest_pending_at: row.try_get(1)?,
        published: row.try_get(2)?,
    })
}
