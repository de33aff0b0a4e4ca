//! Dead letters as an operator handles them: list, show, replay, discard.
//!
//! Replay does not go through the broker: it flags the record, and the consumer that
//! dead-lettered the message handles it again (within a second), through its inbox, so the
//! effect still happens at most once.

use chrono::{DateTime, TimeZone as _, Utc};
use db::{AssertSqlSafe, Db, Row as _, RowExt as _};

/// A message a consumer gave up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The consumer that gave up.
    pub consumer: String,
    /// The message id.
    pub id: String,
    /// The message name (empty when the body did not decode).
    pub name: String,
    /// The subject it arrived on.
    pub subject: String,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
    /// Whether a replay is pending.
    pub replay_requested: bool,
    /// The original `StreamMessage` bytes.
    pub body: Vec<u8>,
}

const COLUMNS: &str =
    "consumer, id, name, subject, error, attempts, dead_at, replay_requested, body";

fn from_row(row: &db::AnyRow) -> Result<DeadLetter, sqlx::Error> {
    Ok(DeadLetter {
        consumer: row.try_get(0)?,
        id: row.try_get(1)?,
        name: row.try_get(2)?,
        subject: row.try_get(3)?,
        error: row.try_get(4)?,
        attempts: row.try_get(5)?,
        dead_at: Utc
            .timestamp_micros(row.try_get(6)?)
            .single()
            .unwrap_or_default(),
        replay_requested: row.flag(7)?,
        body: row.try_get(8)?,
    })
}

/// Every dead letter in `schema`, oldest first.
///
/// # Errors
/// A database error.
pub async fn list(db: &Db, schema: &str) -> Result<Vec<DeadLetter>, sqlx::Error> {
    list_first(db, schema, i64::MAX).await
}

/// The `limit` oldest dead letters in `schema`: what a view that must stay small shows.
///
/// # Errors
/// A database error.
pub async fn list_first(db: &Db, schema: &str, limit: i64) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {schema}.dead_letters ORDER BY dead_at, consumer, id LIMIT $1"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// The dead letters in `schema` of any of the messages `ids`, oldest first.
///
/// # Errors
/// A database error.
pub async fn of_messages(
    db: &Db,
    schema: &str,
    ids: &[String],
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM {schema}.dead_letters WHERE id IN ({}) ORDER BY dead_at, consumer, id",
        db::placeholders(1, ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.clone());
    }
    query
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// One dead letter.
///
/// # Errors
/// A database error.
pub async fn show(
    db: &Db,
    schema: &str,
    consumer: &str,
    id: &str,
) -> Result<Option<DeadLetter>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM {schema}.dead_letters WHERE consumer = $1 AND id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(consumer)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Asks `consumer` to handle the message again; false if there is no such dead letter.
///
/// # Errors
/// A database error.
pub async fn replay(db: &Db, schema: &str, consumer: &str, id: &str) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE {schema}.dead_letters SET replay_requested = $3 WHERE consumer = $1 AND id = $2"
    );
    let done = db
        .write(
            sqlx::query(AssertSqlSafe(sql))
                .bind(consumer)
                .bind(id)
                .bind(true),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a dead letter for good; false if there is no such dead letter.
///
/// # Errors
/// A database error.
pub async fn discard(db: &Db, schema: &str, consumer: &str, id: &str) -> Result<bool, sqlx::Error> {
    let sql = format!("DELETE FROM {schema}.dead_letters WHERE consumer = $1 AND id = $2");
    let done = db
        .write(sqlx::query(AssertSqlSafe(sql)).bind(consumer).bind(id))
        .await?;
    Ok(done.rows_affected() == 1)
}
