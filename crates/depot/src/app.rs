//! The depot use cases. Every change loads the list for update, lets it decide, saves, and
//! stages what others must hear, in one transaction.

use copies::{Copies, Via};
use db::Db;
use messaging::{Message, Outbox};
use proto::depot as pb;

use crate::{
    caches::Missing,
    domain::list::{self, ShoppingList, Status, Wanted},
    repo,
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    List(#[from] list::Error),
    #[error(transparent)]
    Missing(#[from] Missing),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Error {
        Error::Unexpected(error.into())
    }
}

/// An item of an order, as the saga or a REST client sends it.
pub(crate) struct OrderItem {
    pub(crate) product_id: String,
    pub(crate) store_id: String,
    pub(crate) quantity: i32,
}

#[derive(Clone)]
pub(crate) struct App {
    db: Db,
    outbox: Outbox,
    copies: Copies,
}

impl App {
    pub(crate) fn new(db: Db, outbox: Outbox, copies: Copies) -> App {
        App { db, outbox, copies }
    }

    /// Builds and saves a pending list for `order_id` inside `tx`; its id.
    #[host::traced]
    pub(crate) async fn create_in(
        &self,
        tx: &mut db::Conn,
        order_id: String,
        items: Vec<OrderItem>,
    ) -> Result<String, Error> {
        let mut wanted = Vec::with_capacity(items.len());
        for item in items {
            // The store first, then the product, as the book looks them up.
            let store = self.copies.store(Via::Tx(tx), &item.store_id).await;
            let store = store.map_err(Missing::from)?;
            let product = self.copies.product(Via::Tx(tx), &item.product_id).await;
            wanted.push(Wanted {
                store_id: item.store_id,
                store_name: store.name,
                store_location: store.location,
                product_id: item.product_id,
                product_name: product.map_err(Missing::from)?.name,
                quantity: item.quantity,
            });
        }
        let list = ShoppingList::create(uuid::Uuid::new_v4().to_string(), order_id, wanted)?;
        repo::insert(tx, &list).await?;
        Ok(list.id)
    }

    #[host::traced]
    pub(crate) async fn create(
        &self,
        order_id: String,
        items: Vec<OrderItem>,
    ) -> Result<String, Error> {
        let app = self.clone();
        self.db
            .transaction(|tx| Box::pin(async move { app.create_in(tx, order_id, items).await }))
            .await
    }

    /// Applies `decide` to list `id` inside `tx`; a completed or canceled list is announced.
    #[host::traced]
    pub(crate) async fn change_in<F>(
        &self,
        tx: &mut db::Conn,
        id: &str,
        decide: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(&mut ShoppingList) -> Result<Option<list::Event>, list::Error> + Send,
    {
        let mut list = repo::lock(tx, id).await?.ok_or(list::Error::NotFound)?;
        let event = decide(&mut list)?;
        repo::update(tx, &list).await?;
        let (id, order_id) = (list.id.clone(), list.order_id.clone());
        let message = match event {
            Some(list::Event::Completed) => {
                Message::of(&pb::ShoppingListCompleted { id, order_id })
            }
            Some(list::Event::Canceled) => Message::of(&pb::ShoppingListCanceled { id, order_id }),
            None => return Ok(()),
        };
        self.outbox.stage(tx, [message.about(&list.id)]).await?;
        Ok(())
    }

    #[host::traced]
    pub(crate) async fn change<F>(&self, id: &str, decide: F) -> Result<(), Error>
    where
        F: FnOnce(&mut ShoppingList) -> Result<Option<list::Event>, list::Error> + Send + 'static,
    {
        let (app, id) = (self.clone(), id.to_owned());
        self.db
            .transaction(|tx| Box::pin(async move { app.change_in(tx, &id, decide).await }))
            .await
    }

    #[host::traced]
    pub(crate) async fn list(&self, id: &str) -> Result<ShoppingList, Error> {
        repo::find(&self.db, id)
            .await?
            .ok_or(Error::List(list::Error::NotFound))
    }

    #[host::traced]
    pub(crate) async fn lists(&self, status: Status) -> Result<Vec<ShoppingList>, Error> {
        Ok(repo::with_status(&self.db, status).await?)
    }
}
