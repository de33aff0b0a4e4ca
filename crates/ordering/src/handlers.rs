//! What ordering hears: checkouts (create), the saga's Approve/Reject, the depot's completed
//! lists (ready), paid invoices (complete).

use async_trait::async_trait;
use messaging::{CommandError, CommandHandler, Handler, HandlerError, Incoming, Reply};
use proto::{baskets, depot, ordering as pb, payments};

use crate::{
    app::{App, Error},
    domain::order::{self, Command, Item},
};

fn transient(error: Error) -> HandlerError {
    HandlerError::Transient(anyhow::Error::new(error))
}

pub(crate) struct Commands(pub(crate) App);

#[async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<Reply, CommandError> {
        let (id, order_command) = match command.name() {
            pb::APPROVE_ORDER_COMMAND => {
                let request: pb::ApproveOrder = command.decode()?;
                (
                    request.id,
                    Command::Approve {
                        shopping_id: request.shopping_id,
                    },
                )
            }
            pb::REJECT_ORDER_COMMAND => (command.decode::<pb::RejectOrder>()?.id, Command::Reject),
            other => {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "ordering cannot handle command {other}"
                ))
                .into());
            }
        };
        match self.0.execute_in(tx, &id, order_command).await {
            Ok(()) => Ok(Reply::success()),
            // An unknown order, or one no longer pending (cancelled meanwhile): the saga compensates.
            Err(Error::Order(refused)) => Err(CommandError::failed(refused)),
            Err(other) => Err(transient(other).into()),
        }
    }
}

pub(crate) struct Events(pub(crate) App);

#[async_trait]
impl Handler for Events {
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        let (id, command) = match message.name() {
            baskets::BASKET_CHECKED_OUT_EVENT => {
                let event: baskets::BasketCheckedOut = message.decode()?;
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
                // Order id = basket id, as in the book.
                (
                    event.id,
                    Command::Create {
                        customer_id: event.customer_id,
                        payment_id: event.payment_id,
                        items,
                    },
                )
            }
            depot::SHOPPING_LIST_COMPLETED_EVENT => (
                message.decode::<depot::ShoppingListCompleted>()?.order_id,
                Command::Ready,
            ),
            payments::INVOICE_PAID_EVENT => {
                let event: payments::InvoicePaid = message.decode()?;
                (
                    event.order_id,
                    Command::Complete {
                        invoice_id: event.id,
                    },
                )
            }
            other => {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "ordering does not handle {other}"
                )));
            }
        };
        let creating = matches!(command, Command::Create { .. });
        match self.0.execute_in(tx, &id, command).await {
            Ok(()) => Ok(()),
            // The same checkout seen again under another message id: the order exists already.
            Err(Error::Order(order::Error::AlreadyExists)) => Ok(()),
            // A checkout that can never become an order: dead-lettered, visible.
            Err(Error::Order(refused)) if creating => Err(HandlerError::Permanent(refused.into())),
            // A list completed or an invoice paid before the order caught up (the approval may
            // still be on its way): retried with back-off, dead-lettered if it never fits.
            Err(Error::Order(refused)) => Err(HandlerError::Transient(refused.into())),
            Err(other) => Err(transient(other)),
        }
    }
}
