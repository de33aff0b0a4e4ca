//! `mallbots.customers.commands`: AuthorizeCustomer, answered for the create-order saga.

use async_trait::async_trait;
use messaging::{Answer, Answered, CommandError, Incoming, Reply};
use proto::customers as pb;

use crate::app::{App, Error};

pub(crate) struct Commands(pub(crate) App);

#[async_trait]
impl Answer<pb::AuthorizeCustomer> for Commands {
    async fn answer(
        &self,
        tx: &mut db::Conn,
        command: pb::AuthorizeCustomer,
        _: &Incoming,
    ) -> Answered {
        match self.0.authorize_in(tx, &command.id).await {
            Ok(()) => Ok(Reply::success()),
            // Unknown or disabled: the saga hears FAILURE and rejects the order.
            Err(Error::Customer(refused)) => Err(CommandError::failed(refused)),
            Err(Error::Unexpected(error)) => Err(error.into()),
        }
    }
}
