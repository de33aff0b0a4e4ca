//! The transactional outbox: [`Outbox::stage`] writes messages in the business transaction;
//! [`relay`] publishes them, in staging order, after they commit.
//!
//! The relay is woken right after a commit — on PostgreSQL by `NOTIFY` (delivered at commit,
//! to every process), on SQLite by an in-process signal raised while staging; its next read
//! then waits for the staging transaction's write lock, so it sees the rows once committed.
//! It polls only as a fallback. It publishes a batch, awaits every broker ack, then marks the
//! rows; a crash in between republishes them, and the broker and inboxes absorb the
//! duplicates. On PostgreSQL one replica at a time relays a given outbox (advisory lock), which
//! keeps the order and never double-publishes. Errors are logged and retried with back-off;
//! the relay only stops at shutdown.

use std::{sync::Arc, time::Duration};

use db::{AssertSqlSafe, Backend, Db, Row as _};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    Message,
    broker::{Broker, Outgoing},
};

/// A module's outbox, `<schema>.outbox`: the only way a module sends anything.
#[derive(Debug, Clone)]
pub struct Outbox {
    schema: &'static str,
    /// The statements of this outbox, formatted once: `stage` runs on every business write.
    insert: Arc<str>,
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
        let mut any = false;
        for mut message in messages {
            telemetry::inject(&mut telemetry::Map(&mut message.envelope.metadata));
            let traceparent = message
                .envelope
                .metadata
                .get(telemetry::TRACEPARENT)
                .cloned();
            sqlx::query(AssertSqlSafe(self.insert.clone()))
                .bind(message.id())
                .bind(message.name())
                .bind(&message.subject)
                .bind(message.envelope.encode())
                .bind(db::now_micros())
                .bind(traceparent)
                .execute(&mut *tx)
                .await?;
            any = true;
        }
        if !any {
            return Ok(());
        }
        if db::Backend::of(tx) == db::Backend::Postgres {
            // Delivered when (and only if) the transaction commits.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(&*self.channel)
                .execute(&mut *tx)
                .await?;
        } else {
            self.staged.notify_one();
        }
        Ok(())
    }
}

/// How the relay behaves.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Most rows published per round trip.
    pub batch: i64,
    /// Fallback poll when no wake-up arrives.
    pub poll: Duration,
    /// Published rows older than this are deleted.
    pub retention: Duration,
    /// Longest pause after repeated errors.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            batch: 256,
            poll: Duration::from_secs(1),
            retention: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(5),
        }
    }
}

struct Row {
    seq: i64,
    id: String,
    name: String,
    subject: String,
    body: Vec<u8>,
    traceparent: Option<String>,
}

/// Publishes `outbox` to `broker` until `stop` is cancelled. Never returns an error: every
/// failure is logged and retried.
pub async fn relay(
    db: Db,
    outbox: Outbox,
    broker: Arc<dyn Broker>,
    config: RelayConfig,
    stop: CancellationToken,
) {
    if let Some(url) = db.postgres_url() {
        tokio::spawn(listen(
            url.to_owned(),
            outbox.channel.to_string(),
            outbox.staged.clone(),
            stop.clone(),
        ));
    }
    let mut backoff = Duration::from_millis(50);
    let mut last_purge = tokio::time::Instant::now();
    loop {
        if stop.is_cancelled() {
            return;
        }
        let wait = match relay_batch(&db, &outbox, broker.as_ref(), config.batch).await {
            // A full batch: there may be more right away.
            Ok(published) if published as i64 == config.batch => {
                backoff = Duration::from_millis(50);
                continue;
            }
            Ok(_) => {
                backoff = Duration::from_millis(50);
                config.poll
            }
            Err(error) => {
                tracing::warn!(outbox = outbox.schema, error = format!("{error:#}"), retry_in = ?backoff, "outbox relay failed");
                let wait = backoff;
                backoff = (backoff * 2).min(config.max_backoff);
                wait
            }
        };
        if last_purge.elapsed() > Duration::from_secs(60) {
            last_purge = tokio::time::Instant::now();
            if let Err(error) = purge(&db, &outbox, config.retention).await {
                tracing::warn!(outbox = outbox.schema, %error, "purging published outbox rows failed");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = outbox.staged.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Publishes one batch; how many rows were published.
async fn relay_batch(
    db: &Db,
    outbox: &Outbox,
    broker: &dyn Broker,
    batch: i64,
) -> anyhow::Result<usize> {
    let select = format!(
        "SELECT seq, id, name, subject, body, traceparent FROM {}.outbox WHERE published_at IS NULL ORDER BY seq LIMIT {batch}",
        outbox.schema
    );
    match db.backend() {
        Backend::Postgres => {
            let mut tx = db.begin().await?;
            let locked: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
                .bind(lock_key(outbox.schema))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if !locked {
                // Another replica is relaying this outbox.
                return Ok(0);
            }
            let rows = read(&mut tx, &select).await?;
            let published = publish(broker, outbox.schema, &rows).await;
            mark(&mut tx, outbox, &rows[..published.0]).await?;
            tx.commit().await?;
            published.1.map(|()| published.0)
        }
        Backend::Sqlite => {
            if let Some(log) = broker
                .embedded()
                .filter(|log| log.db().shares_writer_with(db))
            {
                return relay_locally(db, outbox, log, &select).await;
            }
            // Taking the write lock waits for a transaction still staging into this outbox.
            let mut tx = db.begin().await?;
            let rows = read(&mut tx, &select).await?;
            tx.commit().await?;
            let published = publish(broker, outbox.schema, &rows).await;
            let mut tx = db.begin().await?;
            mark(&mut tx, outbox, &rows[..published.0]).await?;
            tx.commit().await?;
            published.1.map(|()| published.0)
        }
    }
}

async fn read(tx: &mut db::Conn, select: &str) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(select))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Row {
                seq: row.try_get(0)?,
                id: row.try_get(1)?,
                name: row.try_get(2)?,
                subject: row.try_get(3)?,
                body: row.try_get(4)?,
                traceparent: row.try_get(5)?,
            })
        })
        .collect()
}

/// The embedded log in the outbox's own SQLite database: read, append and mark in one write
/// transaction — one turn of the single writer per batch instead of three, and a batch is
/// published and marked together or not at all.
async fn relay_locally(
    db: &Db,
    outbox: &Outbox,
    log: &crate::Embedded,
    select: &str,
) -> anyhow::Result<usize> {
    let mut tx = db.begin().await?;
    let rows = read(&mut tx, select).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let spans = publish_spans(outbox.schema, &rows);
    let outgoing = outgoing(&rows);
    log.append_in(&mut tx, &outgoing).await?;
    mark(&mut tx, outbox, &rows).await?;
    tx.commit().await?;
    log.published(&outgoing);
    count_published(outbox.schema, &rows);
    drop(spans);
    Ok(rows.len())
}

/// One span per traced message, in the trace that staged it, open until the broker has it.
fn publish_spans(schema: &'static str, rows: &[Row]) -> Vec<tracing::Span> {
    rows.iter()
        .filter_map(|row| {
            let traceparent = row.traceparent.as_deref()?;
            let span = tracing::info_span!(parent: None, "publish", otel.name = format!("publish {}", row.name),
                otel.kind = "producer", module = schema, messaging.destination.name = %row.subject, messaging.message.id = %row.id);
            telemetry::adopt_traceparent(&span, traceparent);
            Some(span)
        })
        .collect()
}

fn outgoing(rows: &[Row]) -> Vec<Outgoing<'_>> {
    rows.iter()
        .map(|row| Outgoing {
            subject: &row.subject,
            id: &row.id,
            body: &row.body,
        })
        .collect()
}

fn count_published(schema: &'static str, rows: &[Row]) {
    for row in rows {
        metrics::counter!("messages_published_total", "module" => schema, "name" => row.name.clone())
            .increment(1);
    }
}

/// Publishes `rows` in order; how many leading rows are stored, and the error if not all are.
async fn publish(
    broker: &dyn Broker,
    schema: &'static str,
    rows: &[Row],
) -> (usize, anyhow::Result<()>) {
    if rows.is_empty() {
        return (0, Ok(()));
    }
    let spans = publish_spans(schema, rows);
    let outgoing = outgoing(rows);
    let (stored, result) = match broker.publish(&outgoing).await {
        Ok(()) => (rows.len(), Ok(())),
        Err(error) => (error.stored, Err(error.into())),
    };
    count_published(schema, &rows[..stored]);
    drop(spans);
    (stored, result)
}

async fn mark(tx: &mut db::Conn, outbox: &Outbox, rows: &[Row]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (2..rows.len() + 2).map(|n| format!("${n}")).collect();
    let update = format!(
        "UPDATE {}.outbox SET published_at = $1 WHERE seq IN ({})",
        outbox.schema,
        placeholders.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(update)).bind(db::now_micros());
    for row in rows {
        query = query.bind(row.seq);
    }
    query.execute(&mut *tx).await?;
    Ok(())
}

async fn purge(db: &Db, outbox: &Outbox, retention: Duration) -> Result<(), sqlx::Error> {
    let cutoff = db::now_micros() - i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    let delete = format!(
        "DELETE FROM {}.outbox WHERE published_at IS NOT NULL AND published_at < $1",
        outbox.schema
    );
    db.write(sqlx::query(AssertSqlSafe(delete)).bind(cutoff))
        .await?;
    Ok(())
}

/// Forwards PostgreSQL notifications on `channel` to `staged`, reconnecting on failure.
async fn listen(url: String, channel: String, staged: Arc<Notify>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let listened = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(&channel).await?;
            // A notification may have been missed while (re)connecting.
            staged.notify_one();
            loop {
                listener.recv().await?;
                staged.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            () = stop.cancelled() => return,
            result = listened => {
                if let Err(error) = result {
                    tracing::warn!(%channel, %error, "outbox listener lost; polling until it reconnects");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn lock_key(schema: &str) -> i64 {
    db::advisory_key(&format!("mallbots.outbox.{schema}"))
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
