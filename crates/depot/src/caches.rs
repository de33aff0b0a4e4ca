//! The depot's copies of stores (with locations, for the bots) and products, fed by stores'
//! events, with a gRPC fallback to the stores module (`RPC_SERVICES` `STORES`, not the
//! process's own address as in the book).

use db::Row as _;
use host::Channel;
use proto::stores::{self as pb, stores_service_client::StoresServiceClient};

/// Why a lookup failed; the messages are the book's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Missing {
    #[error("building shopping list: product fallback failed")]
    Product,
    #[error("building shopping list: store fallback failed")]
    Store,
    #[error("building shopping list: stores unavailable: {0}")]
    Unavailable(tonic::Status),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The product's name.
pub(crate) async fn product_name(
    tx: &mut db::Conn,
    stores: &StoresServiceClient<Channel>,
    id: &str,
) -> Result<String, Missing> {
    let row = sqlx::query("SELECT name FROM depot.products_cache WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = row {
        return Ok(row.try_get(0)?);
    }
    let found = stores
        .clone()
        .get_product(pb::GetProductRequest { id: id.to_owned() })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => Missing::Product,
            _ => Missing::Unavailable(status),
        })?;
    let p = found.into_inner().product.ok_or(Missing::Product)?;
    sqlx::query("INSERT INTO depot.products_cache (id, store_id, name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .bind(&p.store_id)
        .bind(&p.name)
        .execute(&mut *tx)
        .await?;
    Ok(p.name)
}

/// The store's name and location.
pub(crate) async fn store(
    tx: &mut db::Conn,
    stores: &StoresServiceClient<Channel>,
    id: &str,
) -> Result<(String, String), Missing> {
    let row = sqlx::query("SELECT name, location FROM depot.stores_cache WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = row {
        return Ok((row.try_get(0)?, row.try_get(1)?));
    }
    let found = stores
        .clone()
        .get_store(pb::GetStoreRequest { id: id.to_owned() })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => Missing::Store,
            _ => Missing::Unavailable(status),
        })?;
    let s = found.into_inner().store.ok_or(Missing::Store)?;
    sqlx::query("INSERT INTO depot.stores_cache (id, name, location) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .bind(&s.name)
        .bind(&s.location)
        .execute(&mut *tx)
        .await?;
    Ok((s.name, s.location))
}

/// The consumers feeding the caches (`mallbots replay caches` rewinds them).
pub(crate) const STORES_CONSUMER: &str = "depot-stores";
pub(crate) const PRODUCTS_CONSUMER: &str = "depot-products";

messaging::messages! {
    /// The stores events the store cache follows.
    pub(crate) enum StoreEvent {
        Created(pb::StoreCreated),
        Rebranded(pb::StoreRebranded),
    }
}

messaging::messages! {
    /// The stores events the product cache follows.
    pub(crate) enum ProductEvent {
        Added(pb::ProductAdded),
        Rebranded(pb::ProductRebranded),
        Removed(pb::ProductRemoved),
    }
}

/// The subscription handler feeding the caches.
pub(crate) struct Feed;

#[async_trait::async_trait]
impl messaging::Reset for Feed {
    /// The caches are copies of the stores module's events: rebuilt from the stream.
    async fn reset(
        &self,
        tx: &mut db::Conn,
        consumer: &str,
    ) -> Result<(), messaging::HandlerError> {
        let table = match consumer {
            STORES_CONSUMER => "depot.stores_cache",
            _ => "depot.products_cache",
        };
        sqlx::query(db::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl messaging::On<StoreEvent> for Feed {
    async fn on(
        &self,
        tx: &mut db::Conn,
        event: StoreEvent,
        _: &messaging::Incoming,
    ) -> Result<(), messaging::HandlerError> {
        match event {
            StoreEvent::Created(e) => {
                sqlx::query(
                    "INSERT INTO depot.stores_cache (id, name, location) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, location = excluded.location",
                )
                .bind(e.id)
                .bind(e.name)
                .bind(e.location)
                .execute(&mut *tx)
                .await?;
            }
            StoreEvent::Rebranded(e) => {
                sqlx::query("UPDATE depot.stores_cache SET name = $2 WHERE id = $1")
                    .bind(e.id)
                    .bind(e.name)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl messaging::On<ProductEvent> for Feed {
    async fn on(
        &self,
        tx: &mut db::Conn,
        event: ProductEvent,
        _: &messaging::Incoming,
    ) -> Result<(), messaging::HandlerError> {
        match event {
            ProductEvent::Added(e) => {
                sqlx::query(
                    "INSERT INTO depot.products_cache (id, store_id, name) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, name = excluded.name",
                )
                .bind(e.id)
                .bind(e.store_id)
                .bind(e.name)
                .execute(&mut *tx)
                .await?;
            }
            ProductEvent::Rebranded(e) => {
                sqlx::query("UPDATE depot.products_cache SET name = $2 WHERE id = $1")
                    .bind(e.id)
                    .bind(e.name)
                    .execute(&mut *tx)
                    .await?;
            }
            ProductEvent::Removed(e) => {
                sqlx::query("DELETE FROM depot.products_cache WHERE id = $1")
                    .bind(e.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}
