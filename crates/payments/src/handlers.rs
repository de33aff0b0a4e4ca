//! What payments hears: the saga's ConfirmPayment, and ordering's OrderReadied/OrderCanceled.

use async_trait::async_trait;
use messaging::{Answer, Answered, CommandError, Handled, HandlerError, Incoming, On, Reply};
use proto::{ordering, payments as pb};

use crate::app::{App, Error};

fn unexpected(error: Error) -> HandlerError {
    HandlerError::Transient(anyhow::Error::new(error))
}

pub(crate) struct Commands;

#[async_trait]
impl Answer<pb::ConfirmPayment> for Commands {
    async fn answer(
        &self,
        tx: &mut db::Conn,
        command: pb::ConfirmPayment,
        _: &Incoming,
    ) -> Answered {
        match App::confirm_payment(tx, &command.id, command.amount).await {
            Ok(()) => Ok(Reply::success()),
            Err(Error::Payment(refused)) => Err(CommandError::failed(refused)),
            Err(other) => Err(unexpected(other).into()),
        }
    }
}

pub(crate) struct OrderEvents;

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
                App::invoice_order(tx, &order.id, &order.customer_id, order.total)
                    .await
                    .map_err(|error| match error {
                        // A ready order whose total cannot be invoiced will not become invoiceable later.
                        Error::Invoice(refused) => HandlerError::Permanent(refused.into()),
                        other => unexpected(other),
                    })
            }
            OrderEvent::Canceled(order) => App::cancel_order_invoice(tx, &order.id)
                .await
                .map_err(unexpected),
        }
    }
}
