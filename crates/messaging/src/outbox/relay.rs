//! The relay: publishes an outbox's committed rows in staging order and marks them.
//!
//! Marks are coalesced: rows the broker acknowledged are remembered, kept out of the next
//! reads, and marked together once enough have gathered or the oldest has waited
//! [`RelayConfig::mark_every`] — one writing transaction for many messages instead of one per
//! wake-up. A crash before the mark republishes them; the broker (message ids) and the inboxes
//! absorb the duplicates, as they do for a crash between publish and mark. With the embedded
//! log in the outbox's own SQLite database, reading, appending and marking are one transaction
//! and nothing waits.

use std::{sync::Arc, time::Duration};

use db::{AssertSqlSafe, Db, Row as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    Outbox, postgres,
    publish::{Row, count_published, outgoing, publish, publish_spans},
};
use crate::broker::Broker;

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
    /// Longest a published row waits to be marked (marks of many rows share a transaction).
    pub mark_every: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            batch: 256,
            poll: Duration::from_secs(1),
            retention: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(5),
            mark_every: Duration::from_millis(100),
        }
    }
}

/// Rows the broker has and the table does not know yet.
struct Unmarked {
    seqs: Vec<i64>,
    since: Option<Instant>,
    /// As many as a few batches: marked at once.
    most: usize,
    every: Duration,
}

impl Unmarked {
    fn add(&mut self, rows: &[Row]) {
        if !rows.is_empty() && self.since.is_none() {
            self.since = Some(Instant::now());
        }
        self.seqs.extend(rows.iter().map(|row| row.seq));
    }

    fn due(&self) -> bool {
        self.seqs.len() >= self.most || self.deadline().is_some_and(|at| at <= Instant::now())
    }

    fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + self.every)
    }

    fn clear(&mut self) {
        self.seqs.clear();
        self.since = None;
    }

    /// Marks them through `conn` if they are due (or `now`), and forgets them once marked.
    async fn mark_if_due(
        &mut self,
        conn: &mut db::Conn,
        outbox: &Outbox,
        now: bool,
    ) -> Result<(), sqlx::Error> {
        if now || self.due() {
            mark(conn, outbox, &self.seqs).await?;
            self.clear();
        }
        Ok(())
    }
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
    let mut leader = db.postgres_url().map(|url| {
        postgres::listen(url, &outbox.channel, outbox.staged.clone(), stop.clone());
        postgres::Leader::new(url, outbox.schema)
    });
    let mut unmarked = Unmarked {
        seqs: Vec::new(),
        since: None,
        most: BATCHES_PER_MARK * usize::try_from(config.batch).unwrap_or(256),
        every: config.mark_every,
    };
    let relay = Relay {
        db: &db,
        outbox: &outbox,
        broker: broker.as_ref(),
        // The embedded log in the outbox's own SQLite database: one transaction does it all.
        local: broker.embedded().filter(|log| log.db().is_same(&db)),
        batch: config.batch,
    };
    let mut backoff = Duration::from_millis(50);
    let mut last_purge = Instant::now();
    loop {
        if stop.is_cancelled() {
            break;
        }
        let wait = match relay.batch(&mut unmarked, leader.as_mut()).await {
            // A full batch: there may be more right away.
            Ok(published) if published as i64 >= config.batch => {
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
            last_purge = Instant::now();
            if let Err(error) = purge(&db, &outbox, config.retention).await {
                tracing::warn!(outbox = outbox.schema, %error, "purging published outbox rows failed");
            }
        }
        let until = unmarked
            .deadline()
            .map_or(Instant::now() + wait, |due| due.min(Instant::now() + wait));
        tokio::select! {
            () = stop.cancelled() => break,
            () = outbox.staged.notified() => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
    // What was published is marked before the process goes, where the database still answers.
    let marked = match leader.as_mut() {
        _ if unmarked.seqs.is_empty() => Ok(()),
        Some(leader) => match leader.conn().await {
            Ok(Some(conn)) => mark(conn, &outbox, &unmarked.seqs).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        },
        None => mark_now(&db, &outbox, &mut unmarked).await,
    };
    if let Err(error) = marked {
        tracing::debug!(outbox = outbox.schema, %error, "marking at shutdown failed; those rows will be published again");
    }
}

struct Relay<'a> {
    db: &'a Db,
    outbox: &'a Outbox,
    broker: &'a dyn Broker,
    local: Option<&'a crate::Embedded>,
    batch: i64,
}

impl Relay<'_> {
    /// Publishes one batch, and marks what is due; how many rows were published.
    async fn batch(
        &self,
        unmarked: &mut Unmarked,
        leader: Option<&mut postgres::Leader>,
    ) -> anyhow::Result<usize> {
        if let Some(leader) = leader {
            let led = self.lead(unmarked, leader).await;
            if led.is_err() {
                // Whoever takes the lock next publishes these again (the broker drops the
                // copies by message id).
                leader.lost();
                unmarked.clear();
            }
            return led;
        }
        let (db, outbox) = (self.db, self.outbox);
        if let Some(log) = self.local {
            return self.locally(log).await;
        }
        // Taking the write lock waits for a transaction still staging into this outbox.
        let mut tx = db.begin().await?;
        let rows = self.read(&mut tx, None, &unmarked.seqs).await?;
        tx.commit().await?;
        let published = publish(self.broker, outbox.schema, &rows).await;
        unmarked.add(&rows[..published.0]);
        if unmarked.due() {
            mark_now(db, outbox, unmarked).await?;
        }
        published.1.map(|()| published.0)
    }

    /// PostgreSQL: as the leader, on its connection, each statement on its own (a mark is
    /// the only write). While the broker acknowledges one batch, the connection marks what is
    /// due and reads the next: a backlog goes out at the pace of the slower of the two.
    async fn lead(
        &self,
        unmarked: &mut Unmarked,
        leader: &mut postgres::Leader,
    ) -> anyhow::Result<usize> {
        let Some(conn) = leader.conn().await? else {
            // Another replica relays this outbox.
            unmarked.clear();
            return Ok(0);
        };
        unmarked.mark_if_due(conn, self.outbox, false).await?;
        let mut rows = self.read(conn, None, &unmarked.seqs).await?;
        let mut total = 0;
        while !rows.is_empty() {
            let full = rows.len() as i64 == self.batch;
            let (published, next) =
                tokio::join!(publish(self.broker, self.outbox.schema, &rows), async {
                    unmarked.mark_if_due(conn, self.outbox, false).await?;
                    if !full {
                        // Caught up: the next rows come with the next wake-up.
                        return Ok(Vec::new());
                    }
                    // After the batch in flight. A row staged before it and committed since
                    // is read with the next wake-up, which reads from the start.
                    let last = rows.iter().map(|row| row.seq).max();
                    self.read(conn, last, &[]).await
                });
            unmarked.add(&rows[..published.0]);
            total += published.0;
            published.1?;
            rows = next?;
        }
        // A backlog just drained: nothing else is coming to share its mark with, so its rows
        // are marked now rather than after `mark_every`.
        let drained = total as i64 >= self.batch;
        unmarked.mark_if_due(conn, self.outbox, drained).await?;
        Ok(total)
    }

    /// The oldest unpublished rows after `after` (all, if `None`), without those published and
    /// not yet marked. These are skipped here rather than in SQL: a `NOT IN` of a batch's
    /// worth of parameters made each read take 30 ms on PostgreSQL.
    async fn read(
        &self,
        tx: &mut db::Conn,
        after: Option<i64>,
        unmarked: &[i64],
    ) -> Result<Vec<Row>, sqlx::Error> {
        let skip: std::collections::HashSet<i64> = unmarked.iter().copied().collect();
        let mut rows = Vec::new();
        // The limit is bound, not formatted: one prepared statement, however many are skipped.
        for row in sqlx::query(AssertSqlSafe(self.outbox.select.clone()))
            .bind(after.unwrap_or(0))
            .bind(self.batch + i64::try_from(unmarked.len()).unwrap_or(0))
            .fetch_all(&mut *tx)
            .await?
        {
            let seq: i64 = row.try_get(0)?;
            if skip.contains(&seq) {
                continue;
            }
            rows.push(Row {
                seq,
                id: row.try_get(1)?,
                name: row.try_get(2)?,
                subject: row.try_get(3)?,
                body: row.try_get(4)?,
                traceparent: row.try_get(5)?,
            });
        }
        rows.truncate(usize::try_from(self.batch).unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// The embedded log in the outbox's own SQLite database: read, append and mark in one
    /// write transaction — one turn of the single writer per batch instead of three, and a
    /// batch is published and marked together or not at all.
    async fn locally(&self, log: &crate::Embedded) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let rows = self.read(&mut tx, None, &[]).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let spans = publish_spans(self.outbox.schema, &rows);
        let outgoing = outgoing(&rows);
        log.append_in(&mut tx, &outgoing).await?;
        let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
        mark(&mut tx, self.outbox, &seqs).await?;
        tx.commit().await?;
        log.published(&outgoing);
        count_published(self.outbox.schema, &rows);
        drop(spans);
        Ok(rows.len())
    }
}

/// Marks `unmarked` in a transaction of its own, and forgets them once committed.
async fn mark_now(db: &Db, outbox: &Outbox, unmarked: &mut Unmarked) -> Result<(), sqlx::Error> {
    if unmarked.seqs.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    mark(&mut tx, outbox, &unmarked.seqs).await?;
    tx.commit().await?;
    unmarked.clear();
    Ok(())
}

async fn mark(tx: &mut db::Conn, outbox: &Outbox, seqs: &[i64]) -> Result<(), sqlx::Error> {
    let now = db::now_micros();
    for chunk in seqs.chunks(MARKED_PER_STATEMENT) {
        let seqs = db::padded(chunk);
        let update = format!(
            "UPDATE {}.outbox SET published_at = $1 WHERE seq IN ({})",
            outbox.schema,
            db::placeholders(2, seqs.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(update)).bind(now);
        for seq in seqs {
            query = query.bind(*seq);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Rows marked per statement at most.
const MARKED_PER_STATEMENT: usize = 1024;

/// Batches published per mark while a backlog drains: the mark is the leader connection's
/// longest statement, and a draining relay publishes at the pace of the slower of the two.
const BATCHES_PER_MARK: usize = 4;

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
