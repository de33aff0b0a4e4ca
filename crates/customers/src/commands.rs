//! `mallbots.customers.commands`: AuthorizeCustomer, answered for the create-order saga.

use async_trait::async_trait;
use messaging::{CommandError, CommandHandler, HandlerError, Incoming, Reply};
use proto::customers as pb;

use crate::app::{App, Error};

pub(crate) struct Commands;

#[async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<Reply, CommandError> {
        match command.name() {
            pb::AUTHORIZE_CUSTOMER_COMMAND => {
                let request: pb::AuthorizeCustomer = command.decode()?;
                match App::authorize(tx, &request.id).await {
                    Ok(()) => Ok(Reply::success()),
                    // Unknown or disabled: the saga hears FAILURE and rejects the order.
                    Err(Error::Customer(refused)) => Err(CommandError::failed(refused)),
                    Err(Error::Unexpected(error)) => Err(error.into()),
                }
            }
            other => Err(HandlerError::Permanent(anyhow::anyhow!(
                "customers cannot handle command {other}"
            ))
            .into()),
        }
    }
}
