//! The mall: every store as shoppers see it, in `stores.stores`.
//!
//! Written only by [`project`], inside the transaction that appends the Store events, so it is
//! never behind them. Queries never write.

use db::{AssertSqlSafe, Db, Row as _, RowExt as _};

use crate::domain::store::Event;

/// Migration step of the mall table (see `crate::MIGRATIONS`).
pub(crate) const TABLE: &str = "
    CREATE TABLE stores.stores (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        location TEXT NOT NULL,
        participating {bool} NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX {index}stores_participating ON {on}stores (participating);";

/// Migration step: who owns each store (ADR 18), kept by the Created event.
pub(crate) const OWNER: &str =
    "ALTER TABLE stores.stores ADD COLUMN owner TEXT NOT NULL DEFAULT ''";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Store {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) location: String,
    pub(crate) participating: bool,
}

pub(crate) async fn project(
    tx: &mut db::Conn,
    envelopes: &[es::Envelope<Event>],
) -> Result<(), sqlx::Error> {
    for envelope in envelopes {
        let now = envelope.occurred_at.timestamp_micros();
        let id = envelope.aggregate_id.as_str();
        let query = match &envelope.event {
            Event::Created {
                name,
                location,
                owner,
            } => sqlx::query(
                "INSERT INTO stores.stores (id, name, location, participating, created_at, updated_at, owner)
                 VALUES ($1, $2, $3, $4, $5, $5, $6)",
            )
            .bind(id)
            .bind(name.as_str())
            .bind(location.as_str())
            .bind(false)
            .bind(now)
            .bind(owner.as_str()),
            Event::ParticipationEnabled | Event::ParticipationDisabled => {
                let participating = matches!(envelope.event, Event::ParticipationEnabled);
                sqlx::query("UPDATE stores.stores SET participating = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(participating)
                    .bind(now)
            }
            Event::Rebranded { name } => {
                sqlx::query("UPDATE stores.stores SET name = $2, updated_at = $3 WHERE id = $1").bind(id).bind(name.as_str()).bind(now)
            }
        };
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

const COLUMNS: &str = "SELECT id, name, location, participating FROM stores.stores";

fn from_row(row: &db::AnyRow) -> Result<Store, sqlx::Error> {
    Ok(Store {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        location: row.try_get(2)?,
        participating: row.flag(3)?,
    })
}

/// Who owns store `id`, if it exists.
pub(crate) async fn owner(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT owner FROM stores.stores WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await
}

pub(crate) async fn find(db: &Db, id: &str) -> Result<Option<Store>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!("{COLUMNS} WHERE id = $1")))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn all(db: &Db, participating_only: bool) -> Result<Vec<Store>, sqlx::Error> {
    let rows = if participating_only {
        let sql = format!("{COLUMNS} WHERE participating = $1 ORDER BY created_at, id");
        sqlx::query(AssertSqlSafe(sql))
            .bind(true)
            .fetch_all(db.pool())
            .await?
    } else {
        sqlx::query(AssertSqlSafe(format!("{COLUMNS} ORDER BY created_at, id")))
            .fetch_all(db.pool())
            .await?
    };
    rows.iter().map(from_row).collect()
}
