//! Rebuilding the mall and the catalog from the event store (`mallbots replay mall|catalog`).
//!
//! The read model is emptied and every Store (or Product) event is projected again, in append
//! order, in one transaction: readers see the old model until it commits, then the new one.
//! Only the read model is written — no integration event is staged again, so nothing
//! downstream hears of the rebuild. On PostgreSQL the table is locked for writes first, so a
//! store changed meanwhile waits and then applies on top of the rebuilt model.

use db::{AssertSqlSafe, Db};
use es::{Aggregate, Envelope, EventStore};
use futures::future::BoxFuture;
use host::Rebuilt;

use crate::{
    catalog,
    domain::{product::Product, store::Store},
    mall,
};

/// Events read per round trip.
const PAGE: i64 = 500;

/// Projects a page of an aggregate's events into its read model.
type Projection<A> = for<'c> fn(
    &'c mut db::Conn,
    &'c [Envelope<<A as Aggregate>::Event>],
) -> BoxFuture<'c, Result<(), sqlx::Error>>;

/// Rebuilds `stores.stores` from the Store events; nothing is changed on an error (a
/// database error or an undecodable event).
pub(crate) async fn mall(db: &Db) -> anyhow::Result<Rebuilt> {
    rebuild::<Store>(db, "stores.stores", |tx, events| {
        Box::pin(mall::project(tx, events))
    })
    .await
}

/// Rebuilds `stores.products` from the Product events, as [`mall`] does the mall.
pub(crate) async fn catalog(db: &Db) -> anyhow::Result<Rebuilt> {
    rebuild::<Product>(db, "stores.products", |tx, events| {
        Box::pin(catalog::project(tx, events))
    })
    .await
}

async fn rebuild<A: Aggregate>(
    db: &Db,
    table: &'static str,
    project: Projection<A>,
) -> anyhow::Result<Rebuilt> {
    let events = EventStore::<A>::new(db.clone(), crate::SCHEMA, ())?;
    let locker = db.clone();
    let projected = db
        .transaction(|tx| {
            Box::pin(async move {
                locker.lock_against_writes(tx, table).await?;
                sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                    .execute(&mut *tx)
                    .await?;
                let (mut position, mut projected) = (0, 0);
                loop {
                    let page = events.read_all_in(tx, position, PAGE).await?;
                    let Some((last, _)) = page.last() else { break };
                    position = *last;
                    let envelopes: Vec<Envelope<A::Event>> =
                        page.into_iter().map(|(_, e)| e).collect();
                    project(tx, &envelopes).await?;
                    projected += envelopes.len() as u64;
                }
                Ok::<_, anyhow::Error>(projected)
            })
        })
        .await?;
    tracing::info!(table, events = projected, "read model rebuilt");
    Ok(Rebuilt {
        events: projected,
        aggregate: A::TYPE,
    })
}
