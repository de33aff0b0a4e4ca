//! The Basket aggregate: what a customer is about to buy, until checkout.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A line of the basket, with the store and product as they were when it was added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) store_id: String,
    pub(crate) store_name: String,
    pub(crate) product_id: String,
    pub(crate) product_name: String,
    pub(crate) price: f64,
    pub(crate) quantity: i32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    #[default]
    New,
    Open,
    Canceled,
    CheckedOut,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Basket {
    customer_id: String,
    status: Status,
    items: BTreeMap<String, Item>,
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Start { customer_id: String },
    AddItem { item: Item },
    RemoveItem { product_id: String, quantity: i32 },
    Cancel,
    Checkout { payment_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum Event {
    Started {
        customer_id: String,
    },
    ItemAdded {
        item: Item,
    },
    ItemRemoved {
        product_id: String,
        quantity: i32,
    },
    Canceled,
    /// Carries what consumers need of the basket (who, what), so they never read its state.
    CheckedOut {
        payment_id: String,
        customer_id: String,
        items: Vec<Item>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("the customer id cannot be blank")]
    BlankCustomer,
    #[error("basket with that ID does not exist")]
    NotFound,
    #[error("the basket cannot be modified")]
    NotOpen,
    #[error("the basket cannot be cancelled")]
    CannotCancel,
    #[error("the basket has no items")]
    NoItems,
    #[error("the payment id cannot be blank")]
    BlankPayment,
    #[error("the item quantity cannot be negative")]
    NegativeQuantity,
    #[error("a basket holds at most 10000 of a product")]
    TooMany,
    #[error("the basket holds fewer of that product than would be removed")]
    NotThatMany,
}

/// The most of one product a basket holds.
pub(crate) const MAX_QUANTITY: i32 = 10_000;

impl Basket {
    pub(crate) fn customer_id(&self) -> &str {
        &self.customer_id
    }

    pub(crate) fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }
}

impl es::DomainEvent for Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "baskets.BasketStarted",
            Event::ItemAdded { .. } => "baskets.BasketItemAdded",
            Event::ItemRemoved { .. } => "baskets.BasketItemRemoved",
            Event::Canceled => "baskets.BasketCanceled",
            Event::CheckedOut { .. } => "baskets.BasketCheckedOut",
        }
    }
}

impl es::Aggregate for Basket {
    const TYPE: &'static str = "baskets.Basket";
    type Command = Command;
    type Event = Event;
    type Error = Error;

    fn handle(&self, command: Command) -> Result<Vec<Event>, Error> {
        if let Command::Start { customer_id } = command {
            if self.status != Status::New {
                return Err(Error::NotOpen);
            }
            if customer_id.trim().is_empty() {
                return Err(Error::BlankCustomer);
            }
            return Ok(vec![Event::Started { customer_id }]);
        }
        match self.status {
            Status::New => return Err(Error::NotFound),
            Status::Open => {}
            Status::Canceled | Status::CheckedOut if matches!(command, Command::Cancel) => {
                return Err(Error::CannotCancel);
            }
            Status::Canceled | Status::CheckedOut => return Err(Error::NotOpen),
        }
        match command {
            Command::Start { .. } => Err(Error::NotOpen),
            Command::AddItem { item } if item.quantity < 0 => Err(Error::NegativeQuantity),
            Command::AddItem { item } if item.quantity == 0 => Ok(vec![]),
            Command::AddItem { item } => {
                // Checked: a quantity that wraps would turn a total negative.
                let held = self
                    .items
                    .get(&item.product_id)
                    .map_or(0, |line| line.quantity);
                match held.checked_add(item.quantity) {
                    Some(total) if total <= MAX_QUANTITY => Ok(vec![Event::ItemAdded { item }]),
                    _ => Err(Error::TooMany),
                }
            }
            Command::RemoveItem { quantity, .. } if quantity < 0 => Err(Error::NegativeQuantity),
            Command::RemoveItem { quantity: 0, .. } => Ok(vec![]),
            Command::RemoveItem {
                product_id,
                quantity,
            } => {
                let held = self.items.get(&product_id).map_or(0, |item| item.quantity);
                if quantity > held {
                    return Err(Error::NotThatMany);
                }
                Ok(vec![Event::ItemRemoved {
                    product_id,
                    quantity,
                }])
            }
            Command::Cancel => Ok(vec![Event::Canceled]),
            Command::Checkout { .. } if self.items.is_empty() => Err(Error::NoItems),
            Command::Checkout { payment_id } if payment_id.trim().is_empty() => {
                Err(Error::BlankPayment)
            }
            Command::Checkout { payment_id } => Ok(vec![Event::CheckedOut {
                payment_id,
                customer_id: self.customer_id.clone(),
                items: self.items.values().cloned().collect(),
            }]),
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Started { customer_id } => {
                self.customer_id.clone_from(customer_id);
                self.status = Status::Open;
            }
            Event::ItemAdded { item } => {
                // A product added again adds to its line; the line keeps the first name and price.
                self.items
                    .entry(item.product_id.clone())
                    .and_modify(|line| line.quantity += item.quantity)
                    .or_insert_with(|| item.clone());
            }
            Event::ItemRemoved {
                product_id,
                quantity,
            } => {
                if let Some(line) = self.items.get_mut(product_id) {
                    line.quantity -= quantity;
                    if line.quantity <= 0 {
                        self.items.remove(product_id);
                    }
                }
            }
            Event::Canceled => {
                self.status = Status::Canceled;
                self.items.clear();
            }
            Event::CheckedOut { .. } => self.status = Status::CheckedOut,
        }
    }
}

#[cfg(test)]
mod tests;
