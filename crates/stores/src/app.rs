//! The stores use cases: one method per command or query. The framework owns the
//! transactions; the event handlers below say what commits with each append.

use db::Db;
use es::{Envelope, EventStore};
use messaging::Outbox;

use crate::{
    catalog,
    domain::{
        names::{Invalid, Location, Price, ProductName, StoreName},
        product::{self, Product},
        store::{self, Store},
    },
    mall, messages,
};

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Input that can never be valid.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// `AddProduct`'s input, worded as the book does.
    #[error("initializing product: {0}")]
    InvalidProduct(Invalid),
    #[error(transparent)]
    Store(store::Error),
    #[error(transparent)]
    Product(product::Error),
    /// A concurrent change kept winning.
    #[error("the {0} was changed concurrently; try again")]
    Conflict(&'static str),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl Error {
    fn from_store(error: es::Error<store::Error>) -> Error {
        match error {
            es::Error::Rejected(e) => Error::Store(e),
            es::Error::Conflict { .. } => Error::Conflict("store"),
            other => Error::Unexpected(other.into()),
        }
    }

    fn from_product(error: es::Error<product::Error>) -> Error {
        match error {
            es::Error::Rejected(e) => Error::Product(e),
            es::Error::Conflict { .. } => Error::Conflict("product"),
            other => Error::Unexpected(other.into()),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Error {
        Error::Unexpected(error.into())
    }
}

#[derive(Clone)]
pub(crate) struct App {
    db: Db,
    stores: EventStore<Store, StoreEvents>,
    products: EventStore<Product, ProductEvents>,
}

impl App {
    pub(crate) fn new(db: Db, outbox: Outbox) -> anyhow::Result<App> {
        metrics::counter!("stores_created_total").increment(0);
        Ok(App {
            stores: EventStore::new(db.clone(), crate::SCHEMA, StoreEvents(outbox.clone()))?,
            products: EventStore::new(db.clone(), crate::SCHEMA, ProductEvents(outbox))?,
            db,
        })
    }

    #[host::traced]
    pub(crate) async fn create_store(
        &self,
        owner: String,
        name: String,
        location: String,
    ) -> Result<String, Error> {
        let (name, location) = (StoreName::parse(name)?, Location::parse(location)?);
        let id = uuid::Uuid::new_v4().to_string();
        self.stores
            .execute(
                &id,
                store::Command::Create {
                    name,
                    location,
                    owner,
                },
            )
            .await
            .map_err(Error::from_store)?;
        metrics::counter!("stores_created_total").increment(1);
        Ok(id)
    }

    #[host::traced]
    pub(crate) async fn enable_participation(&self, id: &str) -> Result<(), Error> {
        self.store_command(id, store::Command::EnableParticipation)
            .await
    }

    #[host::traced]
    pub(crate) async fn disable_participation(&self, id: &str) -> Result<(), Error> {
        self.store_command(id, store::Command::DisableParticipation)
            .await
    }

    #[host::traced]
    pub(crate) async fn rebrand_store(&self, id: &str, name: String) -> Result<(), Error> {
        let name = StoreName::parse(name)?;
        self.store_command(id, store::Command::Rebrand { name })
            .await
    }

    async fn store_command(&self, id: &str, command: store::Command) -> Result<(), Error> {
        self.stores
            .execute(id, command)
            .await
            .map(drop)
            .map_err(Error::from_store)
    }

    #[host::traced]
    pub(crate) async fn store(&self, id: &str) -> Result<mall::Store, Error> {
        mall::find(&self.db, id)
            .await?
            .ok_or(Error::Store(store::Error::NotFound))
    }

    #[host::traced]
    pub(crate) async fn stores(&self, participating_only: bool) -> Result<Vec<mall::Store>, Error> {
        Ok(mall::all(&self.db, participating_only).await?)
    }

    #[host::traced]
    pub(crate) async fn add_product(
        &self,
        store_id: String,
        name: String,
        description: String,
        sku: String,
        price: f64,
    ) -> Result<String, Error> {
        let name = ProductName::parse(name).map_err(Error::InvalidProduct)?;
        let price = Price::parse(price).map_err(Error::InvalidProduct)?;
        // The mall is written with every Store append, so it knows every store that exists.
        self.store(&store_id).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let command = product::Command::Add {
            store_id,
            name,
            description,
            sku,
            price,
        };
        self.products
            .execute(&id, command)
            .await
            .map_err(Error::from_product)?;
        Ok(id)
    }

    #[host::traced]
    pub(crate) async fn rebrand_product(
        &self,
        id: &str,
        name: String,
        description: String,
    ) -> Result<(), Error> {
        let name = ProductName::parse(name)?;
        self.product_command(id, product::Command::Rebrand { name, description })
            .await
    }

    #[host::traced]
    pub(crate) async fn increase_price(&self, id: &str, price: f64) -> Result<(), Error> {
        let price = Price::parse(price)?;
        self.product_command(id, product::Command::IncreasePrice { price })
            .await
    }

    #[host::traced]
    pub(crate) async fn decrease_price(&self, id: &str, price: f64) -> Result<(), Error> {
        let price = Price::parse(price)?;
        self.product_command(id, product::Command::DecreasePrice { price })
            .await
    }

    #[host::traced]
    pub(crate) async fn remove_product(&self, id: &str) -> Result<(), Error> {
        self.product_command(id, product::Command::Remove).await
    }

    async fn product_command(&self, id: &str, command: product::Command) -> Result<(), Error> {
        self.products
            .execute(id, command)
            .await
            .map(drop)
            .map_err(Error::from_product)
    }

    #[host::traced]
    pub(crate) async fn product(&self, id: &str) -> Result<catalog::Product, Error> {
        catalog::find(&self.db, id)
            .await?
            .ok_or(Error::Product(product::Error::NotFound))
    }

    /// Who owns store `id`.
    pub(crate) async fn owner_of_store(&self, id: &str) -> Result<String, Error> {
        mall::owner(&self.db, id)
            .await?
            .ok_or(Error::Store(store::Error::NotFound))
    }

    #[host::traced]
    pub(crate) async fn catalog(&self, store_id: &str) -> Result<Vec<catalog::Product>, Error> {
        self.store(store_id).await?;
        Ok(catalog::of_store(&self.db, store_id).await?)
    }
}

/// What commits with every Store append: the mall row and the integration event.
#[derive(Clone)]
struct StoreEvents(Outbox);

impl es::EventHandler<Store> for StoreEvents {
    async fn handle(
        &self,
        tx: &mut db::Conn,
        events: &[Envelope<store::Event>],
    ) -> anyhow::Result<()> {
        mall::project(tx, events).await?;
        self.0
            .stage(tx, events.iter().map(messages::store_event))
            .await?;
        Ok(())
    }
}

/// What commits with every Product append: the catalog row and the integration event.
#[derive(Clone)]
struct ProductEvents(Outbox);

impl es::EventHandler<Product> for ProductEvents {
    async fn handle(
        &self,
        tx: &mut db::Conn,
        events: &[Envelope<product::Event>],
    ) -> anyhow::Result<()> {
        catalog::project(tx, events).await?;
        self.0
            .stage(tx, events.iter().map(messages::product_event))
            .await?;
        Ok(())
    }
}
