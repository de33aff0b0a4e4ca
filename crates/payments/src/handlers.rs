//! What payments hears: the saga's ConfirmPayment, and ordering's OrderReadied/OrderCanceled.

use async_trait::async_trait;
use messaging::{CommandError, CommandHandler, Handler, HandlerError, Incoming, Reply};
use proto::{ordering, payments as pb};

use crate::app::{App, Error};

fn unexpected(error: Error) -> HandlerError {
    HandlerError::Transient(anyhow::Error::new(error))
}

pub(crate) struct Commands;

#[async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<Reply, CommandError> {
        match command.name() {
            pb::CONFIRM_PAYMENT_COMMAND => {
                let request: pb::ConfirmPayment = command.decode()?;
                match App::confirm_payment(tx, &request.id, request.amount).await {
                    Ok(()) => Ok(Reply::success()),
                    Err(Error::Payment(refused)) => Err(CommandError::failed(refused)),
                    Err(other) => Err(unexpected(other).into()),
                }
            }
            other => Err(HandlerError::Permanent(anyhow::anyhow!(
                "payments cannot handle command {other}"
            ))
            .into()),
        }
    }
}

pub(crate) struct OrderEvents;

#[async_trait]
impl Handler for OrderEvents {
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        match message.name() {
            ordering::ORDER_READIED_EVENT => {
                let event: ordering::OrderReadied = message.decode()?;
                App::invoice_order(tx, &event.id, &event.customer_id, event.total)
                    .await
                    .map_err(|error| match error {
                        // A ready order whose total cannot be invoiced will not become invoiceable later.
                        Error::Invoice(refused) => HandlerError::Permanent(refused.into()),
                        other => unexpected(other),
                    })
            }
            ordering::ORDER_CANCELED_EVENT => {
                let event: ordering::OrderCanceled = message.decode()?;
                App::cancel_order_invoice(tx, &event.id)
                    .await
                    .map_err(unexpected)
            }
            other => Err(HandlerError::Permanent(anyhow::anyhow!(
                "payments does not handle {other}"
            ))),
        }
    }
}
