//! The stores module's stores and products as the modules that show or ship them copy them
//! (baskets, depot, search): two tables in the module's own schema, `stores_cache (id, name,
//! location)` and `products_cache (id, store_id, name, price)`, fed by `storesapi.*` events
//! through the module's own durable consumers, and filled from the stores service over gRPC
//! when a lookup misses (a copy may lag its events). The module creates the tables in its
//! migrations; this crate reads and writes them.

mod feed;

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

/// Why a lookup found nothing; the messages are the book's.
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    /// Neither the copy nor the stores module knows it (`store` or `product`).
    #[error("{0} fallback failed: {0} was not located")]
    NotFound(&'static str),
    /// The copy does not have it and the stores module did not answer.
    #[error("{what} fallback failed: requesting {what}")]
    Unavailable {
        /// `store` or `product`.
        what: &'static str,
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
    stores: StoresServiceClient<Channel>,
}

impl Copies {
    /// The copies in `schema`, falling back to the stores service on `channel`.
    pub fn new(schema: &'static str, channel: Channel) -> Copies {
        Copies {
            schema,
            stores: StoresServiceClient::new(channel),
        }
    }

    /// The store, from the copy or else from the stores module (then copied).
    ///
    /// # Errors
    /// Not found anywhere, the stores module not answering, or the database.
    pub async fn store(&self, mut via: Via<'_>, id: &str) -> Result<Store, Missing> {
        let sql = format!(
            "SELECT name, location FROM {}.stores_cache WHERE id = $1",
            self.schema
        );
        if let Some(row) = via.find(&sql, id).await? {
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
        let found = answer("store", asked)?
            .store
            .ok_or(Missing::NotFound("store"))?;
        let sql = format!(
            "INSERT INTO {}.stores_cache (id, name, location) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            self.schema
        );
        let query = sqlx::query(db::AssertSqlSafe(sql))
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
        let sql = format!(
            "SELECT store_id, name, price FROM {}.products_cache WHERE id = $1",
            self.schema
        );
        if let Some(row) = via.find(&sql, id).await? {
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
        let found = answer("product", asked)?
            .product
            .ok_or(Missing::NotFound("product"))?;
        let sql = format!(
            "INSERT INTO {}.products_cache (id, store_id, name, price) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            self.schema
        );
        let query = sqlx::query(db::AssertSqlSafe(sql))
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
        let feed = || feed::Feed(self.schema, stores.to_owned());
        let store_events = messaging::events::<feed::StoreEvent, _>(self.schema, stores, feed());
        host.route(store_events.rewindable())?;
        let product_events =
            messaging::events::<feed::ProductEvent, _>(self.schema, products, feed());
        host.route(product_events.rewindable())
    }
}

/// The stores module's answer: not found is [`Missing::NotFound`], any other failure
/// [`Missing::Unavailable`].
fn answer<T>(
    what: &'static str,
    asked: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, Missing> {
    match asked {
        Ok(found) => Ok(found.into_inner()),
        Err(status) if status.code() == tonic::Code::NotFound => Err(Missing::NotFound(what)),
        Err(status) => Err(Missing::Unavailable { what, status }),
    }
}

impl Via<'_> {
    async fn find(&mut self, sql: &str, id: &str) -> Result<Option<db::AnyRow>, sqlx::Error> {
        let query = sqlx::query(db::AssertSqlSafe(sql.to_owned())).bind(id.to_owned());
        match self {
            Via::Tx(tx) => query.fetch_optional(&mut **tx).await,
            Via::Db(db) => query.fetch_optional(db.pool()).await,
        }
    }

    async fn write(
        &mut self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<(), sqlx::Error> {
        match self {
            Via::Tx(tx) => query.execute(&mut **tx).await?,
            Via::Db(db) => db.write(query).await?,
        };
        Ok(())
    }
}
