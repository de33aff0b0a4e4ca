//! The baskets use cases. Outside data (product, store, customer, payment) is looked up first,
//! then the basket decides, in one append.

use copies::Via;
use db::Db;
use es::{Envelope, EventStore};
use host::Channel;
use messaging::Outbox;
use proto::{
    customers::customers_service_client::CustomersServiceClient,
    payments::payments_service_client::PaymentsServiceClient,
};

use crate::{
    domain::basket::{self, Basket, Item},
    messages,
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Basket(#[from] basket::Error),
    #[error(transparent)]
    Missing(#[from] copies::Missing),
    #[error("customer with that ID does not exist")]
    UnknownCustomer,
    #[error("payment with that ID does not exist")]
    UnknownPayment,
    #[error("the payment was authorized for another customer")]
    ForeignPayment,
    #[error("{0} unavailable")]
    Unavailable(&'static str, tonic::Status),
    #[error("the basket was changed concurrently; try again")]
    Conflict,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<es::Error<basket::Error>> for Error {
    fn from(error: es::Error<basket::Error>) -> Error {
        match error {
            es::Error::Rejected(e) => Error::Basket(e),
            es::Error::Conflict { .. } => Error::Conflict,
            other => Error::Unexpected(other.into()),
        }
    }
}

/// The synchronous dependencies: one shared channel each.
#[derive(Clone)]
pub(crate) struct Peers {
    pub(crate) copies: copies::Copies,
    pub(crate) customers: CustomersServiceClient<Channel>,
    pub(crate) payments: PaymentsServiceClient<Channel>,
}

#[derive(Clone)]
pub(crate) struct App {
    db: Db,
    baskets: EventStore<Basket, BasketEvents>,
    peers: Peers,
}

impl App {
    pub(crate) fn new(db: Db, outbox: Outbox, peers: Peers) -> anyhow::Result<App> {
        metrics::counter!("baskets_checked_out_total").increment(0);
        Ok(App {
            baskets: EventStore::new(db.clone(), crate::SCHEMA, BasketEvents(outbox))?,
            db,
            peers,
        })
    }

    #[host::traced]
    pub(crate) async fn start(&self, customer_id: String) -> Result<String, Error> {
        if customer_id.trim().is_empty() {
            return Err(basket::Error::BlankCustomer.into());
        }
        let request = proto::customers::GetCustomerRequest {
            id: customer_id.clone(),
        };
        match self.peers.customers.clone().get_customer(request).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(Error::UnknownCustomer);
            }
            Err(status) => return Err(Error::Unavailable("customers", status)),
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.baskets
            .execute(&id, basket::Command::Start { customer_id })
            .await?;
        Ok(id)
    }

    #[host::traced]
    pub(crate) async fn add_item(
        &self,
        id: &str,
        product_id: &str,
        quantity: i32,
    ) -> Result<(), Error> {
        let copies = &self.peers.copies;
        let product = copies.product(Via::Db(&self.db), product_id).await?;
        let store = copies.store(Via::Db(&self.db), &product.store_id).await?;
        let item = Item {
            store_id: product.store_id,
            store_name: store.name,
            product_id: product.id,
            product_name: product.name,
            price: product.price,
            quantity,
        };
        self.baskets
            .execute(id, basket::Command::AddItem { item })
            .await?;
        Ok(())
    }

    #[host::traced]
    pub(crate) async fn remove_item(
        &self,
        id: &str,
        product_id: String,
        quantity: i32,
    ) -> Result<(), Error> {
        self.baskets
            .execute(
                id,
                basket::Command::RemoveItem {
                    product_id,
                    quantity,
                },
            )
            .await?;
        Ok(())
    }

    #[host::traced]
    pub(crate) async fn cancel(&self, id: &str) -> Result<(), Error> {
        self.baskets.execute(id, basket::Command::Cancel).await?;
        Ok(())
    }

    #[host::traced]
    pub(crate) async fn checkout(&self, id: &str, payment_id: String) -> Result<(), Error> {
        let basket = self.basket(id).await?;
        if !payment_id.trim().is_empty() {
            let request = proto::payments::GetPaymentRequest {
                id: payment_id.clone(),
            };
            let payment = match self.peers.payments.clone().get_payment(request).await {
                Ok(found) => found.into_inner().payment.ok_or(Error::UnknownPayment)?,
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return Err(Error::UnknownPayment);
                }
                Err(status) => return Err(Error::Unavailable("payments", status)),
            };
            if payment.customer_id != basket.customer_id() {
                return Err(Error::ForeignPayment);
            }
        }
        self.baskets
            .execute(id, basket::Command::Checkout { payment_id })
            .await?;
        metrics::counter!("baskets_checked_out_total").increment(1);
        Ok(())
    }

    #[host::traced]
    pub(crate) async fn basket(&self, id: &str) -> Result<Basket, Error> {
        let loaded = self
            .baskets
            .load(id)
            .await?
            .ok_or(basket::Error::NotFound)?;
        Ok(loaded.aggregate)
    }
}

/// What commits with every Basket append: the integration events.
#[derive(Clone)]
struct BasketEvents(Outbox);

impl es::EventHandler<Basket> for BasketEvents {
    async fn handle(
        &self,
        tx: &mut db::Conn,
        events: &[Envelope<basket::Event>],
    ) -> anyhow::Result<()> {
        self.0
            .stage(tx, events.iter().filter_map(messages::event))
            .await?;
        Ok(())
    }
}
