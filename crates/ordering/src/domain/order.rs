//! The Order aggregate and its guarded life: pending → approved | rejected | cancelled;
//! approved → ready → completed.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) product_id: String,
    pub(crate) store_id: String,
    pub(crate) store_name: String,
    pub(crate) product_name: String,
    pub(crate) price: f64,
    pub(crate) quantity: i32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    #[default]
    New,
    Pending,
    Rejected,
    Approved,
    Ready,
    Completed,
    Cancelled,
}

impl Status {
    /// The book's status strings (note `cancelled`, double l).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::New => "",
            Status::Pending => "pending",
            Status::Rejected => "rejected",
            Status::Approved => "approved",
            Status::Ready => "ready",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) customer_id: String,
    pub(crate) payment_id: String,
    pub(crate) shopping_id: String,
    pub(crate) invoice_id: String,
    pub(crate) items: Vec<Item>,
    pub(crate) status: Status,
}

/// The most of one item an order holds (a basket's limit).
pub(crate) const MAX_QUANTITY: i32 = 10_000;
/// The highest price of an item (the catalog's limit).
pub(crate) const MAX_PRICE: f64 = 1_000_000.0;

impl Item {
    fn is_valid(&self) -> bool {
        (1..=MAX_QUANTITY).contains(&self.quantity) && (0.0..=MAX_PRICE).contains(&self.price)
    }
}

/// Sum of price × quantity, counted in cents (an order whose total cannot be counted is
/// refused at its creation).
fn total(items: &[Item]) -> Result<money::Cents, money::Uncountable> {
    money::total(
        items
            .iter()
            .map(|item| (item.price, i64::from(item.quantity))),
    )
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Create {
        customer_id: String,
        payment_id: String,
        items: Vec<Item>,
    },
    Reject,
    Approve {
        shopping_id: String,
    },
    Cancel,
    Ready,
    Complete {
        invoice_id: String,
    },
}

/// Each event carries what consumers of its integration event need, so they never read state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum Event {
    Created {
        customer_id: String,
        payment_id: String,
        items: Vec<Item>,
    },
    Rejected {
        customer_id: String,
        payment_id: String,
    },
    Approved {
        shopping_id: String,
        customer_id: String,
        payment_id: String,
    },
    Cancelled {
        customer_id: String,
        payment_id: String,
    },
    Readied {
        customer_id: String,
        payment_id: String,
        total: f64,
    },
    Completed {
        invoice_id: String,
        customer_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("order with that ID does not exist")]
    NotFound,
    #[error("the order cannot be recreated")]
    AlreadyExists,
    #[error("the order has no items")]
    NoItems,
    #[error("the customer id cannot be blank")]
    BlankCustomer,
    #[error("the payment id cannot be blank")]
    BlankPayment,
    #[error("an item's quantity must be from 1 to 10000 and its price from 0 to 1000000")]
    BadItem,
    #[error("the order total cannot be more than 10000000000000")]
    TotalOutOfRange,
    #[error("the order cannot be cancelled")]
    CannotCancel,
    #[error("the order cannot be rejected")]
    CannotReject,
    #[error("the order cannot be approved")]
    CannotApprove,
    #[error("the order cannot be readied")]
    CannotReady,
    #[error("the order cannot be completed")]
    CannotComplete,
}

impl es::DomainEvent for Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "ordering.OrderCreated",
            Event::Rejected { .. } => "ordering.OrderRejected",
            Event::Approved { .. } => "ordering.OrderApproved",
            Event::Cancelled { .. } => "ordering.OrderCanceled",
            Event::Readied { .. } => "ordering.OrderReadied",
            Event::Completed { .. } => "ordering.OrderCompleted",
        }
    }
}

impl es::Aggregate for Order {
    const TYPE: &'static str = "ordering.Order";
    type Command = Command;
    type Event = Event;
    type Error = Error;

    fn handle(&self, command: Command) -> Result<Vec<Event>, Error> {
        if let Command::Create {
            customer_id,
            payment_id,
            items,
        } = command
        {
            return match () {
                () if self.status != Status::New => Err(Error::AlreadyExists),
                () if items.is_empty() => Err(Error::NoItems),
                () if customer_id.trim().is_empty() => Err(Error::BlankCustomer),
                () if payment_id.trim().is_empty() => Err(Error::BlankPayment),
                () if !items.iter().all(Item::is_valid) => Err(Error::BadItem),
                () if total(&items).is_err() => Err(Error::TotalOutOfRange),
                () => Ok(vec![Event::Created {
                    customer_id,
                    payment_id,
                    items,
                }]),
            };
        }
        if self.status == Status::New {
            return Err(Error::NotFound);
        }
        let (customer_id, payment_id) = (self.customer_id.clone(), self.payment_id.clone());
        match (command, self.status) {
            (Command::Create { .. }, _) => Err(Error::AlreadyExists),
            (Command::Reject, Status::Pending) => Ok(vec![Event::Rejected {
                customer_id,
                payment_id,
            }]),
            // Already closed without approval: the saga's compensation has nothing left to do.
            (Command::Reject, Status::Rejected | Status::Cancelled) => Ok(vec![]),
            (Command::Reject, _) => Err(Error::CannotReject),
            (Command::Approve { shopping_id }, Status::Pending) => Ok(vec![Event::Approved {
                shopping_id,
                customer_id,
                payment_id,
            }]),
            (Command::Approve { .. }, _) => Err(Error::CannotApprove),
            (Command::Cancel, Status::Pending) => Ok(vec![Event::Cancelled {
                customer_id,
                payment_id,
            }]),
            (Command::Cancel, _) => Err(Error::CannotCancel),
            (Command::Ready, Status::Approved) => match total(&self.items) {
                Ok(total) => Ok(vec![Event::Readied {
                    customer_id,
                    payment_id,
                    total: total.amount(),
                }]),
                Err(money::Uncountable) => Err(Error::TotalOutOfRange),
            },
            (Command::Ready, _) => Err(Error::CannotReady),
            (Command::Complete { invoice_id }, Status::Ready) => Ok(vec![Event::Completed {
                invoice_id,
                customer_id,
            }]),
            (Command::Complete { .. }, _) => Err(Error::CannotComplete),
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Created {
                customer_id,
                payment_id,
                items,
            } => {
                self.customer_id.clone_from(customer_id);
                self.payment_id.clone_from(payment_id);
                self.items.clone_from(items);
                self.status = Status::Pending;
            }
            Event::Rejected { .. } => self.status = Status::Rejected,
            Event::Approved { shopping_id, .. } => {
                self.shopping_id.clone_from(shopping_id);
                self.status = Status::Approved;
            }
            Event::Cancelled { .. } => self.status = Status::Cancelled,
            Event::Readied { .. } => self.status = Status::Ready,
            Event::Completed { invoice_id, .. } => {
                self.invoice_id.clone_from(invoice_id);
                self.status = Status::Completed;
            }
        }
    }
}

#[cfg(test)]
mod tests;
