//! Rebuilding the mall and the catalog from the event store (`mallbots replay mall|catalog`).
//!
//! The read model is emptied and every Store (or Product) event is projected again, in append
//! order, in one transaction: readers see the old model until it commits, then the new one.
//! Only the read model is written — no integration event is staged again, so nothing
//! downstream hears of the rebuild. On PostgreSQL the table is locked for writes first, so a
//! store changed meanwhile waits and then applies on top of the rebuilt model.

use db::{AssertSqlSafe, Backend, Db};
use es::{Aggregate, Envelope, EventStore};

use crate::{
    catalog,
    domain::{product::Product, store::Store},
    mall,
};

/// Events read per round trip.
const PAGE: i64 = 500;

/// Rebuilds `stores.stores` from the Store events; how many events were projected.
///
/// # Errors
/// A database error or an undecodable event; nothing is changed then.
pub async fn rebuild_mall(db: &Db) -> anyhow::Result<u64> {
    rebuild::<Store>(db, "stores.stores", mall::project).await
}

/// Rebuilds `stores.products` from the Product events; how many events were projected.
///
/// # Errors
/// A database error or an undecodable event; nothing is changed then.
pub async fn rebuild_catalog(db: &Db) -> anyhow::Result<u64> {
    rebuild::<Product>(db, "stores.products", catalog::project).await
}

async fn rebuild<A: Aggregate>(
    db: &Db,
    table: &str,
    project: impl AsyncFn(&mut db::Conn, &[Envelope<A::Event>]) -> Result<(), sqlx::Error>,
) -> anyhow::Result<u64> {
    let events = EventStore::<A>::new(db.clone(), crate::SCHEMA, ())?;
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE {table} IN EXCLUSIVE MODE"
        )))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
        .execute(&mut *tx)
        .await?;
    let (mut position, mut projected) = (0, 0);
    loop {
        let page = events.read_all_in(&mut tx, position, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        position = *last;
        let envelopes: Vec<Envelope<A::Event>> = page.into_iter().map(|(_, e)| e).collect();
        project(&mut tx, &envelopes).await?;
        projected += envelopes.len() as u64;
    }
    tx.commit().await?;
    tracing::info!(table, events = projected, "read model rebuilt");
    Ok(projected)
}
