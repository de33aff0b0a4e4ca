//! `payments.payments` and `payments.invoices`: load (for update), save.

use db::{AssertSqlSafe, Row as _};

use crate::domain::{
    invoice::{Invoice, Status},
    payment::Payment,
};

/// Migration steps (see `crate::MIGRATIONS`).
pub(crate) const TABLES: &str = "
    CREATE TABLE payments.payments (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        amount DOUBLE PRECISION NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE payments.invoices (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        amount DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX {index}invoices_order ON {on}invoices (order_id);";

/// Who pays an invoice, so that customer alone may read and pay it (ADR 18).
pub(crate) const INVOICE_CUSTOMER: &str =
    "ALTER TABLE payments.invoices ADD COLUMN customer_id TEXT NOT NULL DEFAULT ''";

pub(crate) async fn insert_payment(
    tx: &mut db::Conn,
    payment: &Payment,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO payments.payments (id, customer_id, amount, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&payment.id)
        .bind(&payment.customer_id)
        .bind(payment.amount)
        .bind(db::now_micros())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(crate) async fn payment(tx: &mut db::Conn, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    let row = sqlx::query("SELECT id, customer_id, amount FROM payments.payments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    row.map(|row| {
        Ok(Payment {
            id: row.try_get(0)?,
            customer_id: row.try_get(1)?,
            amount: row.try_get(2)?,
        })
    })
    .transpose()
}

const INVOICE: &str =
    "SELECT id, order_id, amount, status, customer_id FROM payments.invoices WHERE id = $1";

fn invoice_from(row: &db::AnyRow) -> Result<Invoice, sqlx::Error> {
    let status: String = row.try_get(3)?;
    let status = Status::parse(&status)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown invoice status {status:?}").into()))?;
    Ok(Invoice {
        id: row.try_get(0)?,
        order_id: row.try_get(1)?,
        amount: row.try_get(2)?,
        status,
        customer_id: row.try_get(4)?,
    })
}

/// The invoice, locked until the transaction ends.
pub(crate) async fn lock_invoice(
    tx: &mut db::Conn,
    id: &str,
) -> Result<Option<Invoice>, sqlx::Error> {
    let sql = format!("{INVOICE}{}", db::Backend::of(tx).row_lock());
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(invoice_from).transpose()
}

pub(crate) async fn find_invoice(db: &db::Db, id: &str) -> Result<Option<Invoice>, sqlx::Error> {
    let row = sqlx::query(INVOICE)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(invoice_from).transpose()
}

/// Inserts `invoice` unless one with its id exists; whether it was inserted.
pub(crate) async fn insert_invoice(
    tx: &mut db::Conn,
    invoice: &Invoice,
) -> Result<bool, sqlx::Error> {
    let now = db::now_micros();
    let done = sqlx::query(
        "INSERT INTO payments.invoices (id, order_id, amount, status, created_at, updated_at, customer_id)
         VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&invoice.id)
    .bind(&invoice.order_id)
    .bind(invoice.amount)
    .bind(invoice.status.as_str())
    .bind(now)
    .bind(&invoice.customer_id)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn update_invoice(
    tx: &mut db::Conn,
    invoice: &Invoice,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments.invoices SET amount = $2, status = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(&invoice.id)
    .bind(invoice.amount)
    .bind(invoice.status.as_str())
    .bind(db::now_micros())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
