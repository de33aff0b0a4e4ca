//! The console's tables, read and written: the board's orders, their timelines, the counts.

use db::Row as _;

use crate::{
    live::{OrderRow, Step, Summary},
    record::Status,
};

/// The board's orders (status only ever moving forward: `rank`) and every message about
/// each (its timeline).
pub(crate) const TABLES: &str = "
    CREATE TABLE {schema}.orders (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        status TEXT NOT NULL,
        rank INTEGER NOT NULL,
        items BIGINT NOT NULL,
        total_cents BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX {index}orders_status ON {on}orders (status, updated_at);
    CREATE TABLE {schema}.steps (
        seq {serial},
        order_id TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        producer TEXT NOT NULL,
        subject TEXT NOT NULL,
        outcome TEXT,
        sent_at BIGINT NOT NULL,
        UNIQUE (order_id, id)
    );";

/// Orders shown per column of the board.
const PER_COLUMN: i64 = 12;

/// The window over which orders per second are counted.
const RATE_WINDOW_MICROS: i64 = 10_000_000;

/// Rows per statement when a batch is written (8 parameters each, far under both backends'
/// limits); fewer come in a few shapes ([`db::in_shapes`]).
const ROWS_PER_STATEMENT: usize = 128;

/// Adds `steps` to their orders' timelines (a step already there is left as it is).
pub(crate) async fn record_steps(tx: &mut db::Conn, steps: &[Step]) -> Result<(), sqlx::Error> {
    for chunk in db::in_shapes(steps, ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO console.steps (order_id, id, name, kind, producer, subject, outcome, sent_at)
             VALUES {} ON CONFLICT (order_id, id) DO NOTHING",
            db::rows(1, 8, chunk.len())
        );
        let mut query = sqlx::query(db::AssertSqlSafe(sql));
        for step in chunk {
            query = query
                .bind(&step.order_id)
                .bind(&step.id)
                .bind(&step.name)
                .bind(step.kind)
                .bind(&step.producer)
                .bind(&step.subject)
                .bind(&step.outcome)
                .bind(step.sent_at);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// An order's move as a batch of messages makes it: to `status`, with what the first message
/// about it in the batch says (kept if the order is new).
pub(crate) struct Move {
    pub(crate) id: String,
    pub(crate) customer_id: String,
    pub(crate) status: Status,
    pub(crate) items: i64,
    pub(crate) total: money::Cents,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// Puts each order in its move's status unless it is there or further already (at most one
/// move per order); the orders that moved, as the board now knows them.
pub(crate) async fn move_orders(
    tx: &mut db::Conn,
    moves: &[Move],
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let mut moved = Vec::new();
    for chunk in db::in_shapes(moves, ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO console.orders (id, customer_id, status, rank, items, total_cents, created_at, updated_at)
             VALUES {}
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, rank = excluded.rank,
                 updated_at = excluded.updated_at
             WHERE console.orders.rank < excluded.rank
             RETURNING {ORDER_COLUMNS}",
            db::rows(1, 8, chunk.len())
        );
        let mut query = sqlx::query(db::AssertSqlSafe(sql));
        for change in chunk {
            query = query
                .bind(&change.id)
                .bind(&change.customer_id)
                .bind(change.status.as_str())
                .bind(change.status.rank())
                .bind(change.items)
                .bind(change.total.count())
                .bind(change.created_at)
                .bind(change.updated_at);
        }
        for row in query.fetch_all(&mut *tx).await? {
            moved.push(order_row(&row)?);
        }
    }
    Ok(moved)
}

/// A total as stored, as the wire writes it.
fn amount(cents: i64) -> f64 {
    money::Cents::from_count(cents).unwrap_or_default().amount()
}

fn order_row(row: &db::AnyRow) -> Result<OrderRow, sqlx::Error> {
    let status: String = row.try_get(2)?;
    Ok(OrderRow {
        id: row.try_get(0)?,
        customer_id: row.try_get(1)?,
        status: Status::ALL
            .iter()
            .find(|known| known.as_str() == status)
            .map_or("pending", |known| known.as_str()),
        items: row.try_get(3)?,
        total: amount(row.try_get(4)?),
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
    })
}

const ORDER_COLUMNS: &str = "id, customer_id, status, items, total_cents, created_at, updated_at";

/// The latest orders of each status, newest first.
pub(crate) async fn columns(db: &db::Db) -> Result<Vec<OrderRow>, sqlx::Error> {
    let mut orders = Vec::new();
    for status in Status::ALL {
        let rows = sqlx::query(db::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM console.orders WHERE status = $1
             ORDER BY updated_at DESC LIMIT $2"
        )))
        .bind(status.as_str())
        .bind(PER_COLUMN)
        .fetch_all(db.pool())
        .await?;
        for row in &rows {
            orders.push(order_row(row)?);
        }
    }
    Ok(orders)
}

/// How many orders are in each status, and how many completed per second lately.
pub(crate) async fn summary(db: &db::Db) -> Result<Summary, sqlx::Error> {
    let rows = sqlx::query("SELECT status, COUNT(*) FROM console.orders GROUP BY status")
        .fetch_all(db.pool())
        .await?;
    let mut counts = std::collections::BTreeMap::new();
    for status in Status::ALL {
        counts.insert(status.as_str().to_owned(), 0);
    }
    for row in &rows {
        counts.insert(row.try_get(0)?, row.try_get(1)?);
    }
    let since = db::now_micros() - RATE_WINDOW_MICROS;
    let completed: i64 = sqlx::query(
        "SELECT COUNT(*) FROM console.orders WHERE status = 'completed' AND updated_at >= $1",
    )
    .bind(since)
    .fetch_one(db.pool())
    .await?
    .try_get(0)?;
    #[allow(clippy::cast_precision_loss, reason = "a count of orders")]
    let completed_per_second = completed as f64 * 1e6 / RATE_WINDOW_MICROS as f64;
    Ok(Summary {
        counts,
        completed_per_second,
    })
}

/// The order and every message about it, in the order they were sent.
pub(crate) async fn timeline(
    db: &db::Db,
    order: &str,
) -> Result<(Option<OrderRow>, Vec<Step>), sqlx::Error> {
    // Steps first, then the order: read apart, the order is then at least as far along as
    // the last step shown.
    // Bounded: an order's saga sends a few dozen messages; a thousand is a runaway.
    let steps = sqlx::query(
        "SELECT order_id, id, name, kind, producer, subject, outcome, sent_at
         FROM console.steps WHERE order_id = $1 ORDER BY sent_at, seq LIMIT 1000",
    )
    .bind(order)
    .fetch_all(db.pool())
    .await?;
    let found = sqlx::query(db::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM console.orders WHERE id = $1"
    )))
    .bind(order)
    .fetch_optional(db.pool())
    .await?;
    let row = found.as_ref().map(order_row).transpose()?;
    let steps = steps
        .iter()
        .map(|row| {
            let kind: String = row.try_get(3)?;
            Ok(Step {
                order_id: row.try_get(0)?,
                id: row.try_get(1)?,
                name: row.try_get(2)?,
                kind: ["command", "reply"]
                    .into_iter()
                    .find(|known| *known == kind)
                    .unwrap_or("event"),
                producer: row.try_get(4)?,
                subject: row.try_get(5)?,
                outcome: row.try_get(6)?,
                sent_at: row.try_get(7)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((row, steps))
}

/// Empties the console's tables, for a rewound consumer to rebuild them from the stream.
pub(crate) async fn reset(tx: &mut db::Conn) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM console.steps")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM console.orders")
        .execute(tx)
        .await?;
    Ok(())
}
