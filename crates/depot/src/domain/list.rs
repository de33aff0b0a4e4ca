//! A shopping list: an order's items grouped by store, for one bot to fetch.
//!
//! pending → available (initiated by the saga) → assigned (to a bot) → completed;
//! pending, available or assigned → canceled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Line {
    pub(crate) product_name: String,
    pub(crate) quantity: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stop {
    pub(crate) store_name: String,
    pub(crate) store_location: String,
    pub(crate) items: BTreeMap<String, Line>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Available,
    Assigned,
    Completed,
    Canceled,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Available => "available",
            Status::Assigned => "assigned",
            Status::Completed => "completed",
            Status::Canceled => "canceled",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Available,
            Status::Assigned,
            Status::Completed,
            Status::Canceled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("shopping list with that ID does not exist")]
    NotFound,
    #[error("the shopping list cannot be canceled")]
    CannotCancel,
    #[error("the shopping list cannot be initiated")]
    CannotInitiate,
    #[error("the shopping list cannot be assigned")]
    CannotAssign,
    #[error("the shopping list cannot be completed")]
    CannotComplete,
    #[error("the bot id cannot be blank")]
    BlankBot,
    #[error("the item quantity must be positive")]
    BadQuantity,
    #[error("the order id cannot be blank")]
    BlankOrder,
    #[error("a shopping list needs at least one item")]
    NoItems,
}

/// What others must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Completed,
    Canceled,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShoppingList {
    pub(crate) id: String,
    pub(crate) order_id: String,
    pub(crate) stops: BTreeMap<String, Stop>,
    pub(crate) assigned_bot_id: String,
    pub(crate) status: Status,
}

/// One wanted item, with what the depot knows of its store and product.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub(crate) store_id: String,
    pub(crate) store_name: String,
    pub(crate) store_location: String,
    pub(crate) product_id: String,
    pub(crate) product_name: String,
    pub(crate) quantity: i32,
}

impl ShoppingList {
    /// A pending list with a stop per store; repeated products are summed (SPEC decision 13).
    pub(crate) fn create(
        id: String,
        order_id: String,
        wanted: Vec<Wanted>,
    ) -> Result<ShoppingList, Error> {
        if order_id.trim().is_empty() {
            return Err(Error::BlankOrder);
        }
        if wanted.is_empty() {
            return Err(Error::NoItems);
        }
        let mut stops: BTreeMap<String, Stop> = BTreeMap::new();
        for item in wanted {
            if item.quantity <= 0 {
                return Err(Error::BadQuantity);
            }
            let stop = stops.entry(item.store_id).or_insert_with(|| Stop {
                store_name: item.store_name,
                store_location: item.store_location,
                items: BTreeMap::new(),
            });
            stop.items
                .entry(item.product_id)
                .and_modify(|line| line.quantity = line.quantity.saturating_add(item.quantity))
                .or_insert(Line {
                    product_name: item.product_name,
                    quantity: item.quantity,
                });
        }
        Ok(ShoppingList {
            id,
            order_id,
            stops,
            assigned_bot_id: String::new(),
            status: Status::Pending,
        })
    }

    /// Cancelling a canceled list again changes nothing (the saga may retry a compensation).
    pub(crate) fn cancel(&mut self) -> Result<Option<Event>, Error> {
        match self.status {
            Status::Canceled => Ok(None),
            Status::Pending | Status::Available | Status::Assigned => {
                self.status = Status::Canceled;
                Ok(Some(Event::Canceled))
            }
            Status::Completed => Err(Error::CannotCancel),
        }
    }

    pub(crate) fn initiate(&mut self) -> Result<(), Error> {
        if self.status != Status::Pending {
            return Err(Error::CannotInitiate);
        }
        self.status = Status::Available;
        Ok(())
    }

    pub(crate) fn assign(&mut self, bot_id: String) -> Result<(), Error> {
        if bot_id.trim().is_empty() {
            return Err(Error::BlankBot);
        }
        if self.status != Status::Available {
            return Err(Error::CannotAssign);
        }
        self.assigned_bot_id = bot_id;
        self.status = Status::Assigned;
        Ok(())
    }

    pub(crate) fn complete(&mut self) -> Result<Event, Error> {
        if self.status != Status::Assigned {
            return Err(Error::CannotComplete);
        }
        self.status = Status::Completed;
        Ok(Event::Completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(store: &str, product: &str, quantity: i32) -> Wanted {
        Wanted {
            store_id: store.into(),
            store_name: format!("Store {store}"),
            store_location: "Level 1".into(),
            product_id: product.into(),
            product_name: format!("Product {product}"),
            quantity,
        }
    }

    fn list() -> ShoppingList {
        ShoppingList::create(
            "l1".into(),
            "o1".into(),
            vec![
                wanted("s1", "p1", 2),
                wanted("s1", "p1", 3),
                wanted("s2", "p2", 1),
            ],
        )
        .unwrap()
    }

    #[test]
    fn items_are_grouped_by_store_and_repeated_products_summed() {
        let list = list();
        assert_eq!(list.stops.len(), 2);
        assert_eq!(list.stops["s1"].items["p1"].quantity, 5);
        assert_eq!(list.stops["s2"].store_name, "Store s2");
        assert_eq!(list.status, Status::Pending);
    }

    #[test]
    fn a_list_goes_pending_available_assigned_completed() {
        let mut list = list();
        assert_eq!(list.assign("bot-1".into()), Err(Error::CannotAssign));
        assert_eq!(list.initiate(), Ok(()));
        assert_eq!(list.initiate(), Err(Error::CannotInitiate));
        assert_eq!(list.complete(), Err(Error::CannotComplete));
        assert_eq!(list.assign(" ".into()), Err(Error::BlankBot));
        assert_eq!(list.assign("bot-1".into()), Ok(()));
        assert_eq!(list.complete(), Ok(Event::Completed));
        assert_eq!(list.cancel(), Err(Error::CannotCancel));
    }

    #[test]
    fn a_list_is_canceled_until_completed_and_cancelling_again_is_harmless() {
        let mut list = list();
        assert_eq!(list.cancel(), Ok(Some(Event::Canceled)));
        assert_eq!(list.cancel(), Ok(None));
        assert_eq!(list.initiate(), Err(Error::CannotInitiate));
    }

    #[test]
    fn quantities_are_positive() {
        assert_eq!(
            ShoppingList::create("l".into(), "o".into(), vec![wanted("s", "p", 0)]),
            Err(Error::BadQuantity)
        );
    }
}
