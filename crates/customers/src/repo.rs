//! `customers.customers`: load for update, save.

use db::{AssertSqlSafe, Row as _, RowExt as _};

use crate::domain::customer::Customer;

/// Migration step of the customers table (see `crate::MIGRATIONS`).
pub(crate) const TABLE: &str = "
    CREATE TABLE customers.customers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        sms_number TEXT NOT NULL,
        enabled {bool} NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );";

const SELECT: &str = "SELECT id, name, sms_number, enabled FROM customers.customers WHERE id = $1";

fn from_row(row: &db::AnyRow) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        sms_number: row.try_get(2)?,
        enabled: row.flag(3)?,
    })
}

/// The customer, locked until the transaction ends (PostgreSQL; SQLite writes are serial).
pub(crate) async fn load(tx: &mut db::Conn, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    let lock = db::Backend::of(tx).row_lock();
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT}{lock}")))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The customer as committed, for queries.
pub(crate) async fn find(db: &db::Db, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    let row = sqlx::query(SELECT)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn insert(tx: &mut db::Conn, customer: &Customer) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customers.customers (id, name, sms_number, enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&customer.id)
    .bind(&customer.name)
    .bind(&customer.sms_number)
    .bind(customer.enabled)
    .bind(db::now_micros())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(crate) async fn update(tx: &mut db::Conn, customer: &Customer) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE customers.customers SET name = $2, sms_number = $3, enabled = $4, updated_at = $5 WHERE id = $1")
        .bind(&customer.id)
        .bind(&customer.name)
        .bind(&customer.sms_number)
        .bind(customer.enabled)
        .bind(db::now_micros())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Deletes the customer's record (erasure).
pub(crate) async fn delete(tx: &mut db::Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM customers.customers WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
