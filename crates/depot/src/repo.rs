//! `depot.shopping_lists`: load (for update), save, queries.

use db::{AssertSqlSafe, Row as _};

use crate::domain::list::{ShoppingList, Status};

/// Migration step (see `crate::MIGRATIONS`).
pub(crate) const TABLES: &str = "
    CREATE TABLE depot.shopping_lists (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        stops TEXT NOT NULL,
        assigned_bot_id TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX {index}shopping_lists_order ON {on}shopping_lists (order_id);
    CREATE INDEX {index}shopping_lists_status ON {on}shopping_lists (status, created_at);
    CREATE TABLE depot.stores_cache (id TEXT PRIMARY KEY, name TEXT NOT NULL, location TEXT NOT NULL);
    CREATE TABLE depot.products_cache (id TEXT PRIMARY KEY, store_id TEXT NOT NULL, name TEXT NOT NULL);";

const SELECT: &str =
    "SELECT id, order_id, stops, assigned_bot_id, status FROM depot.shopping_lists";

fn from_row(row: &db::AnyRow) -> Result<ShoppingList, sqlx::Error> {
    let stops: String = row.try_get(2)?;
    let status: String = row.try_get(4)?;
    Ok(ShoppingList {
        id: row.try_get(0)?,
        order_id: row.try_get(1)?,
        stops: serde_json::from_str(&stops).map_err(|e| sqlx::Error::Decode(e.into()))?,
        assigned_bot_id: row.try_get(3)?,
        status: Status::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown list status {status:?}").into()))?,
    })
}

/// The list, locked until the transaction ends.
pub(crate) async fn lock(tx: &mut db::Conn, id: &str) -> Result<Option<ShoppingList>, sqlx::Error> {
    let lock = db::Backend::of(tx).row_lock();
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn find(db: &db::Db, id: &str) -> Result<Option<ShoppingList>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Lists with `status`, oldest first (a bot's work queue).
pub(crate) async fn with_status(
    db: &db::Db,
    status: Status,
) -> Result<Vec<ShoppingList>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE status = $1 ORDER BY created_at, id LIMIT 100");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(status.as_str())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

pub(crate) async fn insert(tx: &mut db::Conn, list: &ShoppingList) -> Result<(), sqlx::Error> {
    let stops = serde_json::to_string(&list.stops).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO depot.shopping_lists (id, order_id, stops, assigned_bot_id, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&list.id)
    .bind(&list.order_id)
    .bind(stops)
    .bind(&list.assigned_bot_id)
    .bind(list.status.as_str())
    .bind(db::now_micros())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(crate) async fn update(tx: &mut db::Conn, list: &ShoppingList) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE depot.shopping_lists SET assigned_bot_id = $2, status = $3, updated_at = $4 WHERE id = $1")
        .bind(&list.id)
        .bind(&list.assigned_bot_id)
        .bind(list.status.as_str())
        .bind(db::now_micros())
        .execute(&mut *tx)
        .await?;
    Ok(())
}
