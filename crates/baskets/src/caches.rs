//! Baskets' copies of the stores and products it sells from, fed by stores' events, with a
//! gRPC fallback to the stores module when a copy is missing.

use db::{Db, Row as _};
use host::Channel;
use proto::stores::{self as pb, stores_service_client::StoresServiceClient};

/// Migration step of the caches (see `crate::MIGRATIONS`).
pub(crate) const TABLES: &str = "
    CREATE TABLE baskets.stores_cache (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE baskets.products_cache (
        id TEXT PRIMARY KEY,
        store_id TEXT NOT NULL,
        name TEXT NOT NULL,
        price DOUBLE PRECISION NOT NULL
    );";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Product {
    pub(crate) id: String,
    pub(crate) store_id: String,
    pub(crate) name: String,
    pub(crate) price: f64,
}

/// Why a lookup failed; the messages are the book's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Missing {
    #[error("product fallback failed: product was not located")]
    Product,
    #[error("store fallback failed: store was not located")]
    Store,
    #[error("{what} fallback failed: requesting {what}")]
    Unavailable {
        what: &'static str,
        status: tonic::Status,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The product, from the cache or else from the stores module (then cached).
pub(crate) async fn product(
    db: &Db,
    stores: &StoresServiceClient<Channel>,
    id: &str,
) -> Result<Product, Missing> {
    let row =
        sqlx::query("SELECT id, store_id, name, price FROM baskets.products_cache WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    if let Some(row) = row {
        return Ok(Product {
            id: row.try_get(0)?,
            store_id: row.try_get(1)?,
            name: row.try_get(2)?,
            price: row.try_get(3)?,
        });
    }
    let found = stores
        .clone()
        .get_product(pb::GetProductRequest { id: id.to_owned() })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => Missing::Product,
            _ => Missing::Unavailable {
                what: "product",
                status,
            },
        })?;
    let p = found.into_inner().product.ok_or(Missing::Product)?;
    let product = Product {
        id: p.id,
        store_id: p.store_id,
        name: p.name,
        price: p.price,
    };
    db.write(sqlx::query("INSERT INTO baskets.products_cache (id, store_id, name, price) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
        .bind(&product.id)
        .bind(&product.store_id)
        .bind(&product.name)
        .bind(product.price)
        )
        .await?;
    Ok(product)
}

/// The store's name, from the cache or else from the stores module (then cached).
pub(crate) async fn store_name(
    db: &Db,
    stores: &StoresServiceClient<Channel>,
    id: &str,
) -> Result<String, Missing> {
    let row = sqlx::query("SELECT name FROM baskets.stores_cache WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    if let Some(row) = row {
        return Ok(row.try_get(0)?);
    }
    let found = stores
        .clone()
        .get_store(pb::GetStoreRequest { id: id.to_owned() })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => Missing::Store,
            _ => Missing::Unavailable {
                what: "store",
                status,
            },
        })?;
    let name = found.into_inner().store.ok_or(Missing::Store)?.name;
    db.write(sqlx::query(
        "INSERT INTO baskets.stores_cache (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(&name)
    )
    .await?;
    Ok(name)
}

/// The consumers feeding the caches (`mallbots replay caches` rewinds them).
pub(crate) const STORES_CONSUMER: &str = "baskets-stores";
pub(crate) const PRODUCTS_CONSUMER: &str = "baskets-products";

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
        PriceChanged(pb::ProductPriceChanged),
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
            STORES_CONSUMER => "baskets.stores_cache",
            _ => "baskets.products_cache",
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
        let (StoreEvent::Created(pb::StoreCreated { id, name, .. })
        | StoreEvent::Rebranded(pb::StoreRebranded { id, name })) = event;
        sqlx::query("INSERT INTO baskets.stores_cache (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name")
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
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
                    "INSERT INTO baskets.products_cache (id, store_id, name, price) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, name = excluded.name, price = excluded.price",
                )
                .bind(e.id)
                .bind(e.store_id)
                .bind(e.name)
                .bind(e.price)
                .execute(&mut *tx)
                .await?;
            }
            ProductEvent::Rebranded(e) => {
                sqlx::query("UPDATE baskets.products_cache SET name = $2 WHERE id = $1")
                    .bind(e.id)
                    .bind(e.name)
                    .execute(&mut *tx)
                    .await?;
            }
            ProductEvent::PriceChanged(e) => {
                sqlx::query("UPDATE baskets.products_cache SET price = price + $2 WHERE id = $1")
                    .bind(e.id)
                    .bind(e.delta)
                    .execute(&mut *tx)
                    .await?;
            }
            ProductEvent::Removed(e) => {
                sqlx::query("DELETE FROM baskets.products_cache WHERE id = $1")
                    .bind(e.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}
