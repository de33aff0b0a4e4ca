//! The create-order saga (the book's six steps, SPEC "The order lifecycle"):
//!
//! | step | action | compensation |
//! |---|---|---|
//! | 0 | — | RejectOrder |
//! | 1 | AuthorizeCustomer | — |
//! | 2 | CreateShoppingList (reply: the list id) | CancelShoppingList |
//! | 3 | ConfirmPayment | — |
//! | 4 | InitiateShopping | — |
//! | 5 | ApproveOrder | — |

use proto::{cosec, customers, depot, ordering, payments};
use saga::{Command, Reply, Saga, Step};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) product_id: String,
    pub(crate) store_id: String,
    pub(crate) price: f64,
    pub(crate) quantity: i32,
}

/// What the saga carries from step to step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CreateOrder {
    pub(crate) order_id: String,
    pub(crate) customer_id: String,
    pub(crate) payment_id: String,
    pub(crate) shopping_id: String,
    pub(crate) items: Vec<Item>,
    pub(crate) total: f64,
}

pub(crate) fn saga() -> Saga<CreateOrder> {
    Saga::new(
        cosec::CREATE_ORDER_SAGA_NAME,
        cosec::CREATE_ORDER_REPLY_CHANNEL,
    )
    .step(Step::compensation_only(reject_order))
    .step(Step::act(authorize_customer))
    .step(
        Step::act(create_shopping_list)
            .on_reply(depot::CREATED_SHOPPING_LIST_REPLY, keep_shopping_id)
            .compensate(cancel_shopping_list),
    )
    .step(Step::act(confirm_payment))
    .step(Step::act(initiate_shopping))
    .step(Step::act(approve_order))
}

fn reject_order(data: &CreateOrder) -> Command {
    Command::of(&ordering::RejectOrder {
        id: data.order_id.clone(),
    })
}

fn authorize_customer(data: &CreateOrder) -> Command {
    let payload = customers::AuthorizeCustomer {
        id: data.customer_id.clone(),
    };
    Command::of(&payload)
}

fn create_shopping_list(data: &CreateOrder) -> Command {
    let items = data
        .items
        .iter()
        .map(|item| depot::create_shopping_list::Item {
            product_id: item.product_id.clone(),
            store_id: item.store_id.clone(),
            quantity: item.quantity,
        })
        .collect();
    let payload = depot::CreateShoppingList {
        order_id: data.order_id.clone(),
        items,
    };
    Command::of(&payload)
}

fn keep_shopping_id(data: &mut CreateOrder, reply: &Reply) -> Result<(), String> {
    let created = <depot::CreatedShoppingList as prost::Message>::decode(reply.payload.as_slice())
        .map_err(|e| e.to_string())?;
    data.shopping_id = created.id;
    Ok(())
}

fn cancel_shopping_list(data: &CreateOrder) -> Command {
    let payload = depot::CancelShoppingList {
        id: data.shopping_id.clone(),
    };
    Command::of(&payload)
}

fn confirm_payment(data: &CreateOrder) -> Command {
    let payload = payments::ConfirmPayment {
        id: data.payment_id.clone(),
        amount: data.total,
    };
    Command::of(&payload)
}

fn initiate_shopping(data: &CreateOrder) -> Command {
    Command::of(&depot::InitiateShopping {
        id: data.shopping_id.clone(),
    })
}

fn approve_order(data: &CreateOrder) -> Command {
    let payload = ordering::ApproveOrder {
        id: data.order_id.clone(),
        shopping_id: data.shopping_id.clone(),
    };
    Command::of(&payload)
}

#[cfg(test)]
mod tests {
    use saga::{Status, testing::given};

    use super::*;

    fn data() -> CreateOrder {
        CreateOrder {
            order_id: "o1".into(),
            customer_id: "c1".into(),
            payment_id: "pay".into(),
            shopping_id: String::new(),
            items: vec![Item {
                product_id: "p1".into(),
                store_id: "s1".into(),
                price: 9.99,
                quantity: 5,
            }],
            total: 49.95,
        }
    }

    fn list_created(success: bool) -> Reply {
        let payload = prost::Message::encode_to_vec(&depot::CreatedShoppingList {
            id: "list-1".into(),
        });
        Reply {
            name: depot::CREATED_SHOPPING_LIST_REPLY.into(),
            success,
            payload,
        }
    }

    #[test]
    fn every_step_succeeding_approves_the_order() {
        let saga = saga();
        let done = given(&saga, data())
            .reply(true)
            .reply_with(list_created(true))
            .reply(true)
            .reply(true)
            .reply(true)
            .then_sent([
                "customersapi.AuthorizeCustomer",
                "depotapi.CreateShoppingListCommand",
                "paymentsapi.ConfirmPayment",
                "depotapi.InitiateShoppingCommand",
                "ordersapi.ApproveOrder",
            ])
            .then_status(Status::Completed);
        assert_eq!(done.instance().data.shopping_id, "list-1");
    }

    #[test]
    fn an_unauthorized_customer_rejects_the_order() {
        let saga = saga();
        let _ = given(&saga, data())
            .reply(false)
            .then_sent(["customersapi.AuthorizeCustomer", "ordersapi.RejectOrder"])
            .reply(true)
            .then_status(Status::Compensated);
    }

    #[test]
    fn a_refused_payment_cancels_the_list_then_rejects_the_order() {
        let saga = saga();
        let _ = given(&saga, data())
            .reply(true)
            .reply_with(list_created(true))
            .reply(false)
            .then_sent([
                "customersapi.AuthorizeCustomer",
                "depotapi.CreateShoppingListCommand",
                "paymentsapi.ConfirmPayment",
                "depotapi.CancelShoppingListCommand",
            ])
            .reply(true)
            .then_sent([
                "customersapi.AuthorizeCustomer",
                "depotapi.CreateShoppingListCommand",
                "paymentsapi.ConfirmPayment",
                "depotapi.CancelShoppingListCommand",
                "ordersapi.RejectOrder",
            ])
            .reply(true)
            .then_status(Status::Compensated);
    }

    #[test]
    fn a_refused_approval_compensates_everything_done() {
        let saga = saga();
        let _ = given(&saga, data())
            .reply(true)
            .reply_with(list_created(true))
            .reply(true)
            .reply(true)
            .reply(false)
            .reply(true)
            .reply(true)
            .then_sent([
                "customersapi.AuthorizeCustomer",
                "depotapi.CreateShoppingListCommand",
                "paymentsapi.ConfirmPayment",
                "depotapi.InitiateShoppingCommand",
                "ordersapi.ApproveOrder",
                "depotapi.CancelShoppingListCommand",
                "ordersapi.RejectOrder",
            ])
            .then_status(Status::Compensated);
    }
}
