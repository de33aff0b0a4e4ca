//! The catalog: every product on sale, in `stores.products`.
//!
//! Written only by [`project`], inside the transaction that appends the Product events.

use db::{AssertSqlSafe, Db, Row as _};

use crate::domain::product::Event;

/// Migration step of the catalog table (see `crate::MIGRATIONS`).
pub(crate) const TABLE: &str = "
    CREATE TABLE stores.products (
        id TEXT PRIMARY KEY,
        store_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        sku TEXT NOT NULL,
        price DOUBLE PRECISION NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX {index}products_store ON {on}products (store_id, created_at);";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Product {
    pub(crate) id: String,
    pub(crate) store_id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) sku: String,
    pub(crate) price: f64,
}

pub(crate) async fn project(
    tx: &mut db::Conn,
    envelopes: &[es::Envelope<Event>],
) -> Result<(), sqlx::Error> {
    for envelope in envelopes {
        let now = envelope.occurred_at.timestamp_micros();
        let id = envelope.aggregate_id.as_str();
        let query = match &envelope.event {
            Event::Added { store_id, name, description, sku, price } => sqlx::query(
                "INSERT INTO stores.products (id, store_id, name, description, sku, price, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id)
            .bind(store_id)
            .bind(name.as_str())
            .bind(description)
            .bind(sku)
            .bind(price.value())
            .bind(now),
            Event::Rebranded { name, description } => {
                sqlx::query("UPDATE stores.products SET name = $2, description = $3, updated_at = $4 WHERE id = $1")
                    .bind(id)
                    .bind(name.as_str())
                    .bind(description)
                    .bind(now)
            }
            Event::PriceIncreased { delta } | Event::PriceDecreased { delta } => {
                sqlx::query("UPDATE stores.products SET price = price + $2, updated_at = $3 WHERE id = $1").bind(id).bind(*delta).bind(now)
            }
            Event::Removed => sqlx::query("DELETE FROM stores.products WHERE id = $1").bind(id),
        };
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

const COLUMNS: &str = "SELECT id, store_id, name, description, sku, price FROM stores.products";

fn from_row(row: &db::AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        id: row.try_get(0)?,
        store_id: row.try_get(1)?,
        name: row.try_get(2)?,
        description: row.try_get(3)?,
        sku: row.try_get(4)?,
        price: row.try_get(5)?,
    })
}

pub(crate) async fn find(db: &Db, id: &str) -> Result<Option<Product>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!("{COLUMNS} WHERE id = $1")))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn of_store(db: &Db, store_id: &str) -> Result<Vec<Product>, sqlx::Error> {
    let sql = format!("{COLUMNS} WHERE store_id = $1 ORDER BY created_at, id");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(store_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}
