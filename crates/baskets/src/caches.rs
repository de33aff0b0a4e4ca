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

/// Applies a stores integration event to the caches (inside the inbox transaction).
pub(crate) async fn apply(
    tx: &mut db::Conn,
    message: &messaging::Incoming,
) -> Result<(), messaging::HandlerError> {
    let upsert_store = "INSERT INTO baskets.stores_cache (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name";
    match message.name() {
        pb::STORE_CREATED_EVENT => {
            let event: pb::StoreCreated = message.decode()?;
            sqlx::query(upsert_store)
                .bind(event.id)
                .bind(event.name)
                .execute(&mut *tx)
                .await?;
        }
        pb::STORE_REBRANDED_EVENT => {
            let event: pb::StoreRebranded = message.decode()?;
            sqlx::query(upsert_store)
                .bind(event.id)
                .bind(event.name)
                .execute(&mut *tx)
                .await?;
        }
        pb::PRODUCT_ADDED_EVENT => {
            let event: pb::ProductAdded = message.decode()?;
            sqlx::query(
                "INSERT INTO baskets.products_cache (id, store_id, name, price) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, name = excluded.name, price = excluded.price",
            )
            .bind(event.id)
            .bind(event.store_id)
            .bind(event.name)
            .bind(event.price)
            .execute(&mut *tx)
            .await?;
        }
        pb::PRODUCT_REBRANDED_EVENT => {
            let event: pb::ProductRebranded = message.decode()?;
            sqlx::query("UPDATE baskets.products_cache SET name = $2 WHERE id = $1")
                .bind(event.id)
                .bind(event.name)
                .execute(&mut *tx)
                .await?;
        }
        pb::PRODUCT_PRICE_INCREASED_EVENT | pb::PRODUCT_PRICE_DECREASED_EVENT => {
            let event: pb::ProductPriceChanged = message.decode()?;
            sqlx::query("UPDATE baskets.products_cache SET price = price + $2 WHERE id = $1")
                .bind(event.id)
                .bind(event.delta)
                .execute(&mut *tx)
                .await?;
        }
        pb::PRODUCT_REMOVED_EVENT => {
            let event: pb::ProductRemoved = message.decode()?;
            sqlx::query("DELETE FROM baskets.products_cache WHERE id = $1")
                .bind(event.id)
                .execute(&mut *tx)
                .await?;
        }
        other => {
            return Err(messaging::HandlerError::Permanent(anyhow::anyhow!(
                "baskets does not handle {other}"
            )));
        }
    }
    Ok(())
}

/// The stores events the caches follow, per subject.
pub(crate) const STORE_EVENTS: &[&str] = &[pb::STORE_CREATED_EVENT, pb::STORE_REBRANDED_EVENT];
/// See [`STORE_EVENTS`].
pub(crate) const PRODUCT_EVENTS: &[&str] = &[
    pb::PRODUCT_ADDED_EVENT,
    pb::PRODUCT_REBRANDED_EVENT,
    pb::PRODUCT_PRICE_INCREASED_EVENT,
    pb::PRODUCT_PRICE_DECREASED_EVENT,
    pb::PRODUCT_REMOVED_EVENT,
];

/// The consumers feeding the caches (`mallbots replay caches` rewinds them).
pub(crate) const STORES_CONSUMER: &str = "baskets-stores";
pub(crate) const PRODUCTS_CONSUMER: &str = "baskets-products";

/// The subscription handler feeding the caches.
pub(crate) struct Feed;

#[async_trait::async_trait]
impl messaging::Handler for Feed {
    /// The caches are copies of the stores module's events: rebuilt from the stream.
    async fn reset(
        &self,
        tx: &mut db::Conn,
        consumer: &str,
    ) -> Result<bool, messaging::HandlerError> {
        let table = match consumer {
            STORES_CONSUMER => "baskets.stores_cache",
            PRODUCTS_CONSUMER => "baskets.products_cache",
            _ => return Ok(false),
        };
        sqlx::query(db::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
        Ok(true)
    }

    async fn handle(
        &self,
        tx: &mut db::Conn,
        message: &messaging::Incoming,
    ) -> Result<(), messaging::HandlerError> {
        apply(tx, message).await
    }
}
