//! Rewinds: a consumer read again from the start of the stream, to rebuild the read model its
//! handler keeps (`mallbots replay search`).
//!
//! An operator (any process with the database) records a request with [`request`]; the
//! process running the consumer sees it within a second, between two messages empties the
//! model ([`crate::Handler::reset`]) and the consumer's inbox, moves the consumer back to the
//! start, and lets the ordinary handler rebuild the model in stream order — the same code, so
//! the rebuilt model is the one live consumption would have built. It is marked done when the
//! consumer has caught up. Handlers with effects outside their own tables refuse. What the
//! stream no longer holds (past `NATS_STREAM_MAX_AGE`) cannot be replayed.

use db::{AssertSqlSafe, Db, Row as _};

/// Where a rewind is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// When it was asked for (µs since the epoch).
    pub requested_at: i64,
    /// When the consumer was moved back, if it was yet.
    pub started_at: Option<i64>,
    /// When it finished, if it did.
    pub done_at: Option<i64>,
    /// `rebuilt`, or why it was refused.
    pub outcome: Option<String>,
}

fn checked(schema: &str) -> Result<&str, sqlx::Error> {
    if db::is_valid_schema(schema) {
        Ok(schema)
    } else {
        Err(sqlx::Error::Protocol(format!(
            "{schema:?} is not a schema name"
        )))
    }
}

/// Asks for `consumer` of module `schema` to be rewound (again, if it was before).
///
/// # Errors
/// A database error.
pub async fn request(db: &Db, schema: &str, consumer: &str) -> Result<(), sqlx::Error> {
    db.write(
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {}.rewinds (consumer, requested_at) VALUES ($1, $2)
             ON CONFLICT (consumer) DO UPDATE SET requested_at = excluded.requested_at,
             started_at = NULL, done_at = NULL, outcome = NULL",
            checked(schema)?
        )))
        .bind(consumer)
        .bind(db::now_micros()),
    )
    .await?;
    Ok(())
}

/// The latest rewind of `consumer`, if any was asked for.
///
/// # Errors
/// A database error.
pub async fn status(db: &Db, schema: &str, consumer: &str) -> Result<Option<Status>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT requested_at, started_at, done_at, outcome FROM {}.rewinds WHERE consumer = $1",
        checked(schema)?
    )))
    .bind(consumer)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(Status {
            requested_at: row.try_get(0)?,
            started_at: row.try_get(1)?,
            done_at: row.try_get(2)?,
            outcome: row.try_get(3)?,
        })
    })
    .transpose()
}

pub(crate) async fn started(db: &Db, schema: &str, consumer: &str) -> Result<(), sqlx::Error> {
    db.write(
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {}.rewinds SET started_at = $2 WHERE consumer = $1",
            checked(schema)?
        )))
        .bind(consumer)
        .bind(db::now_micros()),
    )
    .await?;
    Ok(())
}

pub(crate) async fn finish(
    db: &Db,
    schema: &str,
    consumer: &str,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    let now = db::now_micros();
    db.write(
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {}.rewinds SET started_at = COALESCE(started_at, $2), done_at = $2, outcome = $3
             WHERE consumer = $1",
            checked(schema)?
        )))
        .bind(consumer)
        .bind(now)
        .bind(outcome),
    )
    .await?;
    Ok(())
}
