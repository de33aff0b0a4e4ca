//! The stores module's stores and products as the modules that show or ship them copy them
//! (baskets, depot, search): two tables in the module's own schema, `stores_cache (id, name,
//! location)` and `products_cache (id, store_id, name, price)`, fed by `storesapi.*` events
//! through the module's own durable consumers, and filled from the stores service over gRPC
//! when a lookup misses (a copy may lag its events). The module creates the tables in its
//! migrations; this crate reads and writes them.

mod feed;
mod sql;

use std::sync::Arc;

use db::{Db, Row as _};
use host::Channel;
use proto::stores::{self as pb, stores_service_client::StoresServiceClient};

/// A store as copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where it is in the mall.
    pub location: String,
}

/// A product as copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Its id.
    pub id: String,
    /// The store selling it.
    pub store_id: String,
    /// Its name.
    pub name: String,
    /// Its price (the book's double; `money` counts it).
    pub price: f64,
}

/// What was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// A store.
    Store,
    /// A product.
    Product,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Copied::Store => "store",
            Copied::Product => "product",
        })
    }
}

/// Why a lookup found nothing; the messages are the book's.
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    /// Neither the copy nor the stores module knows it.
    #[error("{0} fallback failed: {0} was not located")]
    NotFound(Copied),
    /// The copy does not have it and the stores module did not answer.
    #[error("{what} fallback failed: requesting {what}")]
    Unavailable {
        /// What was looked up.
        what: Copied,
        /// What the stores module said.
        status: tonic::Status,
    },
    /// The copy could not be read or written.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Where a lookup reads and fills the copy: inside the caller's transaction, or on its own
/// (a read, then an autocommitted insert taking its turn among the writers).
pub enum Via<'a> {
    /// Inside this transaction.
    Tx(&'a mut db::Conn),
    /// Outside any transaction.
    Db(&'a Db),
}

/// The copies as a read model `mallbots replay caches` rebuilds: `consumers` (the module's
/// stores and products consumers) rewound.
pub const fn read_model(consumers: &'static [&'static str]) -> host::ReadModel {
    host::ReadModel {
        name: "caches",
        about: "The copies of the stores and products (baskets, depot), from the stream",
        rebuild: host::Rebuild::Rewind(consumers),
    }
}

/// One module's copies.
#[derive(Clone)]
pub struct Copies {
    schema: &'static str,
    sql: Arc<sql::Sql>,
    stores: StoresServiceClient<Channel>,
}

impl Copies {
    /// The copies in `schema`, falling back to the stores service on `channel`.
    pub fn new(schema: &'static str, channel: Channel) -> Copies {
        Copies {
            schema,
            sql: Arc::new(sql::Sql::new(schema)),
            stores: StoresServiceClient::new(channel),
        }
    }

    /// The store, from the copy or else from the stores module (then copied).
    ///
    /// # Errors
    /// Not found anywhere, the stores module not answering, or the database.
    pub async fn store(&self, mut via: Via<'_>, id: &str) -> Result<Store, Missing> {
        if let Some(row) = via.find(&self.sql.store, id).await? {
            let (name, location) = (row.try_get(0)?, row.try_get(1)?);
            return Ok(Store {
                id: id.to_owned(),
                name,
                location,
            });
        }
        let asked = self
            .stores
            .clone()
            .get_store(pb::GetStoreRequest { id: id.to_owned() })
            .await;
        let found = answer(Copied::Store, asked)?
            .store
            .ok_or(Missing::NotFound(Copied::Store))?;
        let query = sql::query(&self.sql.copy_store)
            .bind(id)
            .bind(&found.name)
            .bind(&found.location);
        via.write(query).await?;
        Ok(Store {
            id: id.to_owned(),
            name: found.name,
            location: found.location,
        })
    }

    /// The product, from the copy or else from the stores module (then copied).
    ///
    /// # Errors
    /// Not found anywhere, the stores module not answering, or the database.
    pub async fn product(&self, mut via: Via<'_>, id: &str) -> Result<Product, Missing> {
        if let Some(row) = via.find(&self.sql.product, id).await? {
            let (store_id, name, price) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            return Ok(Product {
                id: id.to_owned(),
                store_id,
                name,
                price,
            });
        }
        let asked = self
            .stores
            .clone()
            .get_product(pb::GetProductRequest { id: id.to_owned() })
            .await;
        let found = answer(Copied::Product, asked)?
            .product
            .ok_or(Missing::NotFound(Copied::Product))?;
        let query = sql::query(&self.sql.copy_product)
            .bind(id)
            .bind(&found.store_id)
            .bind(&found.name)
            .bind(found.price);
        via.write(query).await?;
        Ok(Product {
            id: id.to_owned(),
            store_id: found.store_id,
            name: found.name,
            price: found.price,
        })
    }

    /// Feeds the copies from the stores module's events through the durable consumers
    /// `stores` and `products` (which `mallbots replay` may rewind: the tables are emptied
    /// first).
    ///
    /// # Errors
    /// The routes are invalid (a bug caught at start-up).
    pub fn mount(&self, host: &mut host::Host, stores: &str, products: &str) -> anyhow::Result<()> {
        let store_feed = feed::Stores(self.sql.clone());
        host.route(messaging::events(self.schema, stores, store_feed).rewindable())?;
        let product_feed = feed::Products(self.sql.clone());
        host.route(messaging::events(self.schema, products, product_feed).rewindable())
    }
}

/// The stores module's answer: not found is [`Missing::NotFound`], any other failure
/// [`Missing::Unavailable`].
fn answer<T>(what: Copied, asked: Result<tonic::Response<T>, tonic::Status>) -> Result<T, Missing> {
    match asked {
        Ok(found) => Ok(found.into_inner()),
        Err(status) if status.code() == tonic::Code::NotFound => Err(Missing::NotFound(what)),
        Err(status) => Err(Missing::Unavailable { what, status }),
    }
}

impl Via<'_> {
    async fn find(&mut self, sql: &Arc<str>, id: &str) -> Result<Option<db::AnyRow>, sqlx::Error> {
        let query = sql::query(sql).bind(id);
        match self {
            Via::Tx(tx) => query.fetch_optional(&mut **tx).await,
            Via::Db(db) => query.fetch_optional(db.pool()).await,
        }
    }

    async fn write(&mut self, query: sql::Query<'_>) -> Result<(), sqlx::Error> {
        match self {
            Via::Tx(tx) => query.execute(&mut **tx).await?,
            Via::Db(db) => db.write(query).await?,
        };
        Ok(())
    }
}
