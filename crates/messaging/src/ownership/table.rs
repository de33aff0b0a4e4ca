//! The owners' table: what the keeper reads and writes, each statement in one place.

use db::{AssertSqlSafe, Row as _};

use super::{Owners, micros, part_of};

/// One row of `consumer_owners`.
pub(super) struct Row {
    pub(super) consumer: String,
    pub(super) part: u32,
    pub(super) parts: u32,
    pub(super) owner: String,
    pub(super) expires_at: i64,
}

impl Owners {
    /// Hands `part` of `consumer`, taken at `epoch`, back to the table: called once its runner
    /// has stopped, so that another replica takes it at once rather than when the lease ends.
    ///
    /// # Errors
    /// The database's (the lease then runs out instead).
    pub async fn release(&self, consumer: &str, part: u32, epoch: i64) -> Result<(), sqlx::Error> {
        let released = self
            .inner
            .db
            .write(
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {}.consumer_owners SET owner = '', expires_at = 0
                     WHERE consumer = $1 AND part = $2 AND owner = $3 AND epoch = $4",
                    self.inner.schema
                )))
                .bind(consumer)
                .bind(i64::from(part))
                .bind(&self.inner.member)
                .bind(epoch),
            )
            .await?;
        if let Some(joined) = self.joined().get_mut(consumer) {
            joined.releasing.remove(&part);
        }
        if released.rows_affected() > 0 {
            tracing::info!(consumer, part, epoch, "let go of a share of the consumer");
        }
        Ok(())
    }

    /// Leaves: this replica's member row and every lease it holds, at shutdown (runners have
    /// stopped by then).
    pub(super) async fn leave(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.inner.db.begin().await?;
        for table in ["consumer_owners", "consumer_members"] {
            let (column, set) = if table == "consumer_owners" {
                ("owner", "owner = '', expires_at = 0")
            } else {
                ("member", "expires_at = 0")
            };
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {}.{table} SET {set} WHERE {column} = $1",
                self.inner.schema
            )))
            .bind(&self.inner.member)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    pub(super) async fn rows(&self) -> Result<Vec<Row>, sqlx::Error> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT consumer, part, parts, owner, expires_at FROM {}.consumer_owners",
            self.inner.schema
        )))
        .fetch_all(self.inner.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Row {
                    consumer: row.try_get(0)?,
                    part: part_of(row.try_get(1)?),
                    parts: part_of(row.try_get(2)?),
                    owner: row.try_get(3)?,
                    expires_at: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Takes `part` if nobody holds it (no row, a row let go of, or a lease run out), raising
    /// its epoch; the epoch taken at, or `None` when another replica got there first.
    pub(super) async fn acquire(
        &self,
        consumer: &str,
        part: u32,
        parts: u32,
        now: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        let schema = self.inner.schema;
        let mut tx = self.inner.db.begin().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.consumer_owners (consumer, part, parts, owner, epoch, expires_at)
             VALUES ($1, $2, $3, $4, 1, $5)
             ON CONFLICT (consumer, part) DO UPDATE SET owner = excluded.owner,
                 parts = excluded.parts, expires_at = excluded.expires_at,
                 epoch = {schema}.consumer_owners.epoch + 1
             WHERE {schema}.consumer_owners.expires_at <= $6
             RETURNING epoch"
        )))
        .bind(consumer)
        .bind(i64::from(part))
        .bind(i64::from(parts))
        .bind(&self.inner.member)
        .bind(now + micros(self.inner.lease))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|row| row.try_get(0)).transpose()
    }
}
