//! The copies fed by `storesapi.*` events, in the module's inbox transaction. Every write is
//! safe to repeat: an added or created row is upserted, the rest change rows in place.

use std::sync::Arc;

use async_trait::async_trait;
use messaging::{Handled, HandlerError, Incoming, On, Reset};
use proto::stores as pb;

use crate::sql::{Sql, query};

messaging::messages! {
    /// The store events the store copy follows.
    pub(crate) enum StoreEvent {
        Created(pb::StoreCreated),
        Rebranded(pb::StoreRebranded),
    }
}

messaging::messages! {
    /// The product events the product copy follows.
    pub(crate) enum ProductEvent {
        Added(pb::ProductAdded),
        Rebranded(pb::ProductRebranded),
        PriceChanged(pb::ProductPriceChanged),
        Removed(pb::ProductRemoved),
    }
}

/// The feed of a schema's store copy.
pub(crate) struct Stores(pub(crate) Arc<Sql>);

/// The feed of a schema's product copy.
pub(crate) struct Products(pub(crate) Arc<Sql>);

#[async_trait]
impl On<StoreEvent> for Stores {
    async fn on(&self, tx: &mut db::Conn, event: StoreEvent, _: &Incoming) -> Handled {
        let write = match event {
            StoreEvent::Created(e) => query(&self.0.store_created)
                .bind(e.id)
                .bind(e.name)
                .bind(e.location),
            StoreEvent::Rebranded(e) => query(&self.0.store_rebranded).bind(e.id).bind(e.name),
        };
        write.execute(&mut *tx).await?;
        Ok(())
    }
}

#[async_trait]
impl On<ProductEvent> for Products {
    async fn on(&self, tx: &mut db::Conn, event: ProductEvent, _: &Incoming) -> Handled {
        let write = match event {
            ProductEvent::Added(e) => query(&self.0.product_added)
                .bind(e.id)
                .bind(e.store_id)
                .bind(e.name)
                .bind(e.price),
            ProductEvent::Rebranded(e) => query(&self.0.product_rebranded).bind(e.id).bind(e.name),
            ProductEvent::PriceChanged(e) => query(&self.0.price_changed).bind(e.id).bind(e.delta),
            ProductEvent::Removed(e) => query(&self.0.product_removed).bind(e.id),
        };
        write.execute(&mut *tx).await?;
        Ok(())
    }
}

// The copies are the stores module's events, read again from the start of the stream.

#[async_trait]
impl Reset for Stores {
    async fn reset(&self, tx: &mut db::Conn, _: &str) -> Result<(), HandlerError> {
        query(&self.0.clear_stores).execute(&mut *tx).await?;
        Ok(())
    }
}

#[async_trait]
impl Reset for Products {
    async fn reset(&self, tx: &mut db::Conn, _: &str) -> Result<(), HandlerError> {
        query(&self.0.clear_products).execute(&mut *tx).await?;
        Ok(())
    }
}
