//! What payments hears: the saga's ConfirmPayment, and ordering's OrderReadied/OrderCanceled.

use async_trait::async_trait;
use messaging::{Answer, Answered, CommandError, Handled, HandlerError, Incoming, On, Reply};
use proto::{ordering, payments as pb};

use crate::app::{App, Error};

fn unexpected(error: Error) -> HandlerError {
    HandlerError::Transient(anyhow::Error::new(error))
}

pub(crate) struct Commands(pub(crate) App);

#[async_trait]
impl Answer<pb::ConfirmPayment> for Commands {
    async fn answer(
        &self,
        tx: &mut db::Conn,
        command: pb::ConfirmPayment,
        _: &Incoming,
    ) -> Answered {
        match self
            .0
            .confirm_payment_in(tx, &command.id, command.amount)
            .await
        {
            Ok(()) => Ok(Reply::success()),
            Err(Error::Payment(refused)) => Err(CommandError::failed(refused)),
            Err(other) => Err(unexpected(other).into()),
        }
    }
}

pub(crate) struct OrderEvents(pub(crate) App);

messaging::messages! {
    /// What payments hears of orders.
    pub(crate) enum OrderEvent {
        Readied(ordering::OrderReadied),
        Canceled(ordering::OrderCanceled),
    }
}

#[async_trait]
impl On<OrderEvent> for OrderEvents {
    async fn on(&self, tx: &mut db::Conn, event: OrderEvent, _: &Incoming) -> Handled {
        match event {
            OrderEvent::Readied(order) => {
                self.0
                    .invoice_order_in(tx, &order.id, &order.customer_id, order.total)
                    .await
                    .map_err(|error| match error {
                        // A ready order whose total cannot be invoiced will not become invoiceable later.
                        Error::Invoice(refused) => HandlerError::Permanent(refused.into()),
                        other => unexpected(other),
                    })
            }
            OrderEvent::Canceled(order) => self
                .0
                .cancel_order_invoice_in(tx, &order.id)
                .await
                .map_err(unexpected),
        }
    }
}
