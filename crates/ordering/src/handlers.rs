//! What ordering hears: checkouts (create), the saga's Approve/Reject, the depot's completed
//! lists (ready), paid invoices (complete).

use async_trait::async_trait;
use messaging::{Answer, Answered, CommandError, Handled, HandlerError, Incoming, On, Reply};
use proto::{baskets, depot, ordering as pb, payments};

use crate::{
    app::{App, Error},
    domain::order::{self, Command, Item},
};

pub(crate) struct Commands(pub(crate) App);

messaging::messages! {
    /// The saga's commands to ordering.
    pub(crate) enum OrderCommand {
        Approve(pb::ApproveOrder),
        Reject(pb::RejectOrder),
    }
}

#[async_trait]
impl Answer<OrderCommand> for Commands {
    async fn answer(&self, tx: &mut db::Conn, command: OrderCommand, _: &Incoming) -> Answered {
        let (id, command) = match command {
            OrderCommand::Approve(pb::ApproveOrder { id, shopping_id }) => {
                (id, Command::Approve { shopping_id })
            }
            OrderCommand::Reject(pb::RejectOrder { id }) => (id, Command::Reject),
        };
        match self.0.execute_in(tx, &id, command).await {
            Ok(()) => Ok(Reply::success()),
            // An unknown order, or one no longer pending (cancelled meanwhile): the saga compensates.
            Err(Error::Order(refused)) => Err(CommandError::failed(refused)),
            Err(other) => Err(HandlerError::Transient(other.into()).into()),
        }
    }
}

pub(crate) struct Events(pub(crate) App);

impl Events {
    async fn execute(
        &self,
        tx: &mut db::Conn,
        id: &str,
        command: Command,
    ) -> Result<(), HandlerError> {
        let creating = matches!(command, Command::Create { .. });
        match self.0.execute_in(tx, id, command).await {
            Ok(()) => Ok(()),
            // The same checkout seen again under another message id: the order exists already.
            Err(Error::Order(order::Error::AlreadyExists)) => Ok(()),
            // A checkout that can never become an order: dead-lettered, visible.
            Err(Error::Order(refused)) if creating => Err(HandlerError::Permanent(refused.into())),
            // A list completed or an invoice paid before the order caught up (the approval may
            // still be on its way): retried with back-off, dead-lettered if it never fits.
            Err(Error::Order(refused)) => Err(HandlerError::Transient(refused.into())),
            Err(other) => Err(HandlerError::Transient(other.into())),
        }
    }
}

#[async_trait]
impl On<baskets::BasketCheckedOut> for Events {
    async fn on(
        &self,
        tx: &mut db::Conn,
        event: baskets::BasketCheckedOut,
        _: &Incoming,
    ) -> Handled {
        let items = event
            .items
            .into_iter()
            .map(|item| Item {
                product_id: item.product_id,
                store_id: item.store_id,
                store_name: item.store_name,
                product_name: item.product_name,
                price: item.price,
                quantity: item.quantity,
            })
            .collect();
        let create = Command::Create {
            customer_id: event.customer_id,
            payment_id: event.payment_id,
            items,
        };
        // Order id = basket id, as in the book.
        self.execute(tx, &event.id, create).await
    }
}

#[async_trait]
impl On<depot::ShoppingListCompleted> for Events {
    async fn on(
        &self,
        tx: &mut db::Conn,
        event: depot::ShoppingListCompleted,
        _: &Incoming,
    ) -> Handled {
        self.execute(tx, &event.order_id, Command::Ready).await
    }
}

#[async_trait]
impl On<payments::InvoicePaid> for Events {
    async fn on(&self, tx: &mut db::Conn, event: payments::InvoicePaid, _: &Incoming) -> Handled {
        let complete = Command::Complete {
            invoice_id: event.id,
        };
        self.execute(tx, &event.order_id, complete).await
    }
}
