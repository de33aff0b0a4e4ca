//! The saga's commands to the depot: create, initiate and cancel shopping lists.

use async_trait::async_trait;
use messaging::{Answer, Answered, CommandError, HandlerError, Incoming, Reply};
use proto::depot as pb;

use crate::{
    app::{App, Error, OrderItem},
    domain::list::ShoppingList,
};

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

messaging::messages! {
    /// The saga's commands to the depot.
    pub(crate) enum ListCommand {
        Create(pb::CreateShoppingList),
        Initiate(pb::InitiateShopping),
        Cancel(pb::CancelShoppingList),
    }
}

#[async_trait]
impl Answer<ListCommand> for Commands {
    async fn answer(&self, tx: &mut db::Conn, command: ListCommand, _: &Incoming) -> Answered {
        let (id, change): (_, fn(&mut ShoppingList) -> _) = match command {
            ListCommand::Create(create) => {
                let items = create
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
                    .create_in(tx, create.order_id, items)
                    .await
                    .map_err(refused_or_retried)?;
                return Ok(Reply::of(&pb::CreatedShoppingList { id }));
            }
            ListCommand::Initiate(pb::InitiateShopping { id }) => {
                (id, |list| list.initiate().map(|()| None))
            }
            ListCommand::Cancel(pb::CancelShoppingList { id }) => (id, ShoppingList::cancel),
        };
        self.0
            .change_in(tx, &id, change)
            .await
            .map_err(refused_or_retried)?;
        Ok(Reply::success())
    }
}
