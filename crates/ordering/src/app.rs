//! The ordering use cases. A command arriving with a message runs in that message's inbox
//! transaction (`*_in`), so the order's events and the inbox row commit together.

use db::Db;
use es::{Envelope, EventStore};
use messaging::Outbox;

use crate::{
    domain::order::{self, Item, Order},
    messages,
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Order(order::Error),
    #[error("the order was changed concurrently; try again")]
    Conflict,
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<es::Error<order::Error>> for Error {
    fn from(error: es::Error<order::Error>) -> Error {
        match error {
            es::Error::Rejected(e) => Error::Order(e),
            es::Error::Conflict { .. } => Error::Conflict,
            other => Error::Unexpected(other.into()),
        }
    }
}

#[derive(Clone)]
pub(crate) struct App {
    orders: EventStore<Order, OrderEvents>,
}

impl App {
    pub(crate) fn new(db: Db, outbox: Outbox) -> anyhow::Result<App> {
        for status in FINAL {
            metrics::counter!("orders_finished_total", "status" => status).increment(0);
        }
        Ok(App {
            orders: EventStore::new(db, crate::SCHEMA, OrderEvents(outbox))?,
        })
    }

    #[host::traced]
    pub(crate) async fn create(
        &self,
        customer_id: String,
        payment_id: String,
        items: Vec<Item>,
    ) -> Result<String, Error> {
        let id = uuid::Uuid::new_v4().to_string();
        self.orders
            .execute(
                &id,
                order::Command::Create {
                    customer_id,
                    payment_id,
                    items,
                },
            )
            .await?;
        Ok(id)
    }

    #[host::traced]
    pub(crate) async fn execute(&self, id: &str, command: order::Command) -> Result<(), Error> {
        let events = self.orders.execute(id, command).await?;
        count_finished(&events);
        Ok(())
    }

    /// Runs `command` inside a message's transaction.
    #[host::traced]
    pub(crate) async fn execute_in(
        &self,
        tx: &mut db::Conn,
        id: &str,
        command: order::Command,
    ) -> Result<(), Error> {
        let events = self
            .orders
            .execute_in(tx, id, command, &es::Metadata::new())
            .await?;
        count_finished(&events);
        Ok(())
    }

    #[host::traced]
    pub(crate) async fn order(&self, id: &str) -> Result<Order, Error> {
        let loaded = self
            .orders
            .load(id)
            .await?
            .ok_or(Error::Order(order::Error::NotFound))?;
        Ok(loaded.aggregate)
    }
}

/// The statuses an order ends in.
const FINAL: [&str; 3] = ["completed", "cancelled", "rejected"];

/// Counts orders reaching a final status (a business counter: orders by how they ended).
fn count_finished(events: &[es::Envelope<order::Event>]) {
    for envelope in events {
        let status = match envelope.event {
            order::Event::Completed { .. } => "completed",
            order::Event::Cancelled { .. } => "cancelled",
            order::Event::Rejected { .. } => "rejected",
            // Not final; a new event must be placed here or above.
            order::Event::Created { .. }
            | order::Event::Approved { .. }
            | order::Event::Readied { .. } => continue,
        };
        metrics::counter!("orders_finished_total", "status" => status).increment(1);
    }
}

/// What commits with every Order append: the integration events.
#[derive(Clone)]
struct OrderEvents(Outbox);

impl es::EventHandler<Order> for OrderEvents {
    async fn handle(
        &self,
        tx: &mut db::Conn,
        events: &[Envelope<order::Event>],
    ) -> anyhow::Result<()> {
        self.0.stage(tx, events.iter().map(messages::event)).await?;
        Ok(())
    }
}
