//! The saga's commands to the depot: create, initiate and cancel shopping lists.

use async_trait::async_trait;
use messaging::{CommandError, CommandHandler, HandlerError, Incoming, Reply};
use proto::depot as pb;

use crate::app::{App, Error, OrderItem};

pub(crate) struct Commands(pub(crate) App);

fn refused_or_retried(error: Error) -> CommandError {
    match error {
        Error::List(refused) => CommandError::failed(refused),
        Error::Missing(crate::caches::Missing::Product | crate::caches::Missing::Store) => {
            CommandError::failed(error)
        }
        other => HandlerError::Transient(anyhow::Error::new(other)).into(),
    }
}

#[async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<Reply, CommandError> {
        match command.name() {
            pb::CREATE_SHOPPING_LIST_COMMAND => {
                let request: pb::CreateShoppingList = command.decode()?;
                let items = request
                    .items
                    .into_iter()
                    .map(|i| OrderItem {
                        product_id: i.product_id,
                        store_id: i.store_id,
                        quantity: i.quantity,
                    })
                    .collect();
                let id = self
                    .0
                    .create_in(tx, request.order_id, items)
                    .await
                    .map_err(refused_or_retried)?;
                Ok(Reply::new(
                    pb::CREATED_SHOPPING_LIST_REPLY,
                    &pb::CreatedShoppingList { id },
                ))
            }
            pb::INITIATE_SHOPPING_COMMAND => {
                let id = command.decode::<pb::InitiateShopping>()?.id;
                self.0
                    .change_in(tx, &id, |list| list.initiate().map(|()| None))
                    .await
                    .map_err(refused_or_retried)?;
                Ok(Reply::success())
            }
            pb::CANCEL_SHOPPING_LIST_COMMAND => {
                let id = command.decode::<pb::CancelShoppingList>()?.id;
                self.0
                    .change_in(tx, &id, |list| list.cancel().map(|()| None))
                    .await
                    .map_err(refused_or_retried)?;
                Ok(Reply::success())
            }
            other => Err(HandlerError::Permanent(anyhow::anyhow!(
                "depot cannot handle command {other}"
            ))
            .into()),
        }
    }
}
