//! The customers use cases. Each change loads the row for update, lets the domain decide,
//! saves, and stages the integration event — all in one transaction.

use db::Db;
use messaging::Outbox;

use crate::{
    domain::customer::{self, Customer, Event},
    messages, repo,
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Customer(#[from] customer::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Error {
        Error::Unexpected(error.into())
    }
}

#[derive(Clone)]
pub(crate) struct App {
    db: Db,
    outbox: Outbox,
}

impl App {
    pub(crate) fn new(db: Db, outbox: Outbox) -> App {
        App { db, outbox }
    }

    #[host::traced]
    pub(crate) async fn register(
        &self,
        id: Option<String>,
        name: String,
        sms_number: String,
    ) -> Result<String, Error> {
        let chosen = id.is_some();
        let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (customer, event) = Customer::register(id, name, sms_number)?;
        let outbox = self.outbox.clone();
        self.db
            .transaction(|tx| {
                Box::pin(async move {
                    if chosen && repo::load(tx, &customer.id).await?.is_some() {
                        return Err(Error::Customer(customer::Error::AlreadyRegistered));
                    }
                    repo::insert(tx, &customer).await?;
                    outbox
                        .stage(tx, [messages::event(&customer, &event)])
                        .await?;
                    Ok::<_, Error>(customer.id)
                })
            })
            .await
    }

    #[host::traced]
    pub(crate) async fn customer(&self, id: &str) -> Result<Customer, Error> {
        repo::find(&self.db, id)
            .await?
            .ok_or(Error::Customer(customer::Error::NotFound))
    }

    /// Whether `id` may order, as committed (the gRPC query; the command handler checks inside
    /// its transaction with [`App::authorize_in`]).
    #[host::traced]
    pub(crate) async fn authorized(&self, id: &str) -> Result<(), Error> {
        Ok(self.customer(id).await?.authorize()?)
    }

    #[host::traced]
    pub(crate) async fn enable(&self, id: &str) -> Result<(), Error> {
        self.change(id, |customer| customer.enable().map(Some))
            .await
    }

    #[host::traced]
    pub(crate) async fn disable(&self, id: &str) -> Result<(), Error> {
        self.change(id, |customer| customer.disable().map(Some))
            .await
    }

    #[host::traced]
    pub(crate) async fn change_sms_number(
        &self,
        id: &str,
        sms_number: String,
    ) -> Result<(), Error> {
        self.change(id, move |customer| customer.change_sms_number(sms_number))
            .await
    }

    /// Forgets customer `id`: its record and the messages about it the outbox still keeps
    /// go, and every module hears `CustomerErased` to scrub its copies.
    #[host::traced]
    pub(crate) async fn erase(&self, id: &str) -> Result<(), Error> {
        let (id, outbox) = (id.to_owned(), self.outbox.clone());
        self.db
            .transaction(|tx| {
                Box::pin(async move {
                    let customer = repo::load(tx, &id)
                        .await?
                        .ok_or(customer::Error::NotFound)?;
                    repo::delete(tx, &id).await?;
                    outbox.forget(tx, &id).await?;
                    outbox
                        .stage(tx, [messages::event(&customer, &Event::Erased)])
                        .await?;
                    Ok::<_, Error>(())
                })
            })
            .await
    }

    /// Loads `id` for update, applies `decide`, saves and announces what happened.
    async fn change<F>(&self, id: &str, decide: F) -> Result<(), Error>
    where
        F: FnOnce(&mut Customer) -> Result<Option<Event>, customer::Error> + Send + 'static,
    {
        let (id, outbox) = (id.to_owned(), self.outbox.clone());
        self.db
            .transaction(|tx| {
                Box::pin(async move {
                    let mut customer = repo::load(tx, &id)
                        .await?
                        .ok_or(customer::Error::NotFound)?;
                    if let Some(event) = decide(&mut customer)? {
                        repo::update(tx, &customer).await?;
                        outbox
                            .stage(tx, [messages::event(&customer, &event)])
                            .await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .await
    }

    /// Whether `id` may order, read inside the command's transaction.
    #[host::traced]
    pub(crate) async fn authorize_in(&self, tx: &mut db::Conn, id: &str) -> Result<(), Error> {
        let customer = repo::load(tx, id).await?.ok_or(customer::Error::NotFound)?;
        Ok(customer.authorize()?)
    }
}
