//! What a module's consumers have received, read back from their inbox: when each message
//! was handled (the inbox row is written in the handling transaction), for an operator's view.

use db::{AssertSqlSafe, Db, Row as _};

/// One message received by one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The consumer that handled it.
    pub consumer: String,
    /// The message id.
    pub id: String,
    /// When the handling transaction wrote its inbox row (µs since the epoch).
    pub received_at: i64,
}

/// Which of `ids` the `consumers` of module `schema` have handled, and when; through the
/// inbox's key (consumer, id), so it costs what it finds. Inbox rows are kept for
/// [`crate::Subscription::inbox_retention`]: older messages are not found.
///
/// # Errors
/// A database error, or `schema` is not a plain identifier.
pub async fn received(
    db: &Db,
    schema: &str,
    consumers: &[String],
    ids: &[String],
) -> Result<Vec<Received>, sqlx::Error> {
    if !db::is_valid_schema(schema) {
        return Err(sqlx::Error::Protocol(format!(
            "{schema:?} is not a schema name"
        )));
    }
    if consumers.is_empty() || ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT consumer, id, received_at FROM {schema}.inbox
         WHERE consumer IN ({}) AND id IN ({}) ORDER BY received_at",
        db::placeholders(1, consumers.len()),
        db::placeholders(1 + consumers.len(), ids.len()),
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in consumers.iter().chain(ids) {
        query = query.bind(value.clone());
    }
    query
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(Received {
                consumer: row.try_get(0)?,
                id: row.try_get(1)?,
                received_at: row.try_get(2)?,
            })
        })
        .collect()
}
