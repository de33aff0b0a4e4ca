//! A durable consumer of the embedded log: claims a batch of deliveries in one transaction,
//! and settles them one by one (or, through [`Embedded::ack_in`], inside the handler's own).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use db::{AssertSqlSafe, Backend, Row as _, placeholders};

use super::{Embedded, POLL};
use crate::{
    broker::{BrokerError, Consumer, ConsumerSpec, Delivery},
    leases::{Lease, Leases},
};

pub(super) struct EmbeddedConsumer {
    broker: Embedded,
    spec: ConsumerSpec,
    /// Every delivery not yet settled (by its log position), renewed while it is worked on.
    leases: Arc<Leases<i64>>,
}

pub(super) fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl EmbeddedConsumer {
    pub(super) fn new(broker: Embedded, spec: ConsumerSpec) -> EmbeddedConsumer {
        let (log, durable, ack_wait) = (broker.clone(), spec.durable.clone(), spec.ack_wait);
        let leases = Leases::start(spec.ack_wait, move |positions: Vec<i64>| {
            let (log, durable) = (log.clone(), durable.clone());
            Box::pin(async move {
                // A lost renewal costs a redelivery, which the inbox absorbs.
                if let Err(error) = log.renew(&durable, &positions, ack_wait).await {
                    tracing::debug!(%error, "renewing deliveries' leases failed");
                }
            })
        });
        EmbeddedConsumer {
            broker,
            spec,
            leases,
        }
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

    /// Claims up to `max` deliveries in one transaction: redeliveries that are due first, then
    /// new messages after the cursor, each in log order.
    async fn claim(&self, max: usize) -> Result<Vec<EmbeddedDelivery>, sqlx::Error> {
        if !self.anything_due().await? {
            return Ok(Vec::new());
        }
        let broker = &self.broker;
        let (stream, name) = (&*broker.stream, self.spec.durable.as_str());
        // On PostgreSQL replicas of one consumer may race; SQLite has one writer at a time.
        let lock = match broker.db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let now = db::now_micros();
        let visible_at = now + micros(self.spec.ack_wait);
        let mut tx = broker.db.begin().await?;

        let mut claimed: Vec<(i64, i32)> = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, attempts + 1 FROM broker.deliveries
             WHERE stream = $1 AND consumer = $2 AND visible_at <= $3 ORDER BY seq LIMIT {max}{lock}"
        )))
        .bind(stream)
        .bind(name)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        if !claimed.is_empty() {
            let mut update = sqlx::query(AssertSqlSafe(format!(
                "UPDATE broker.deliveries SET attempts = attempts + 1, visible_at = $3
                 WHERE stream = $1 AND consumer = $2 AND seq IN ({})",
                placeholders(4, claimed.len())
            )))
            .bind(stream)
            .bind(name)
            .bind(visible_at);
            for (seq, _) in &claimed {
                update = update.bind(*seq);
            }
            update.execute(&mut *tx).await?;
        }
        let room = max.saturating_sub(claimed.len());
        if room > 0 {
            let fresh = self.claim_new(&mut tx, room, visible_at).await?;
            claimed.extend(fresh.into_iter().map(|seq| (seq, 1)));
        }
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, subject, body FROM broker.messages WHERE seq IN ({})",
            placeholders(1, claimed.len())
        )));
        for (seq, _) in &claimed {
            select = select.bind(*seq);
        }
        let mut messages: std::collections::HashMap<i64, (String, Vec<u8>)> = select
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?))))
            .collect::<Result<_, sqlx::Error>>()?;
        tx.commit().await?;
        Ok(claimed
            .into_iter()
            .filter_map(|(seq, attempt)| {
                // A message purged under a stale delivery row has nothing left to deliver.
                let (subject, body) = messages.remove(&seq)?;
                Some(EmbeddedDelivery {
                    lease: self.leases.take(seq),
                    broker: broker.clone(),
                    consumer: self.spec.durable.clone(),
                    ack_wait: self.spec.ack_wait,
                    seq,
                    subject,
                    body,
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                })
            })
            .collect())
    }

    /// Moves the cursor over up to `room` new messages and records a delivery for each.
    async fn claim_new(
        &self,
        tx: &mut db::Conn,
        room: usize,
        visible_at: i64,
    ) -> Result<Vec<i64>, sqlx::Error> {
        let broker = &self.broker;
        let (stream, name) = (&*broker.stream, self.spec.durable.as_str());
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
        let fresh: Vec<i64> = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq FROM broker.messages WHERE stream = $1 AND seq > $2 AND subject {filter} ORDER BY seq LIMIT {room}"
        )))
        .bind(stream)
        .bind(cursor)
        .bind(pattern)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, sqlx::Error>>()?;
        let Some(last) = fresh.last() else {
            return Ok(fresh);
        };
        sqlx::query("UPDATE broker.consumers SET cursor = $3 WHERE stream = $1 AND name = $2")
            .bind(stream)
            .bind(name)
            .bind(*last)
            .execute(&mut *tx)
            .await?;
        let values: Vec<String> = (0..fresh.len())
            .map(|i| format!("($1, $2, ${}, 1, $3)", i + 4))
            .collect();
        let mut insert = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO broker.deliveries (stream, consumer, seq, attempts, visible_at) VALUES {}",
            values.join(", ")
        )))
        .bind(stream)
        .bind(name)
        .bind(visible_at);
        for seq in &fresh {
            insert = insert.bind(*seq);
        }
        insert.execute(&mut *tx).await?;
        Ok(fresh)
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
pub(super) fn subject_filter(subject: &str) -> (&'static str, String) {
    match subject.strip_suffix('>') {
        Some(prefix) => ("LIKE $3", format!("{prefix}%")),
        None => ("= $3", subject.to_owned()),
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn next(&mut self) -> Result<Box<dyn Delivery>, BrokerError> {
        loop {
            if let Some(delivery) = self.next_batch(1).await?.pop() {
                return Ok(delivery);
            }
        }
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<Box<dyn Delivery>>, BrokerError> {
        loop {
            // Registered (enabled) before looking, so a publish between the look and the wait
            // still wakes us: `notify_waiters` only wakes futures already registered.
            let wake = self.broker.wake(&self.spec.subject);
            let published = wake.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let claimed = self.claim(max.max(1)).await?;
            if !claimed.is_empty() {
                return Ok(claimed
                    .into_iter()
                    .map(|delivery| Box::new(delivery) as Box<dyn Delivery>)
                    .collect());
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
    lease: Lease<i64>,
}

impl EmbeddedDelivery {
    async fn settle(&self, visible_in: Option<Duration>) -> Result<(), BrokerError> {
        self.lease.release();
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
            Some(delay) => query.bind(db::now_micros() + micros(delay)),
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
        Ok(self
            .broker
            .renew(&self.consumer, &[self.seq], self.ack_wait)
            .await?)
    }

    fn log_position(&self) -> Option<i64> {
        Some(self.seq)
    }
}
