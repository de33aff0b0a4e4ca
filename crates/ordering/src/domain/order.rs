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

impl Order {
    /// Sum of price × quantity, counted in cents; `None` when it cannot be counted (an order
    /// is refused at its creation for that).
    pub(crate) fn total(&self) -> Option<money::Cents> {
        total(&self.items).ok()
    }
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
            (Command::Ready, Status::Approved) => match self.total() {
                Some(total) => Ok(vec![Event::Readied {
                    customer_id,
                    payment_id,
                    total: total.amount(),
                }]),
                None => Err(Error::TotalOutOfRange),
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
mod tests {
    use es::testing::given;

    use super::*;

    fn items() -> Vec<Item> {
        let item = |price, quantity| Item {
            product_id: "p1".into(),
            store_id: "s1".into(),
            store_name: "Store".into(),
            product_name: "Product".into(),
            price,
            quantity,
        };
        vec![item(9.99, 5), item(1.0, 2)]
    }

    fn created() -> Event {
        Event::Created {
            customer_id: "c1".into(),
            payment_id: "pay".into(),
            items: items(),
        }
    }

    fn approved() -> Event {
        Event::Approved {
            shopping_id: "list".into(),
            customer_id: "c1".into(),
            payment_id: "pay".into(),
        }
    }

    #[test]
    fn an_order_is_created_pending() {
        let create = Command::Create {
            customer_id: "c1".into(),
            payment_id: "pay".into(),
            items: items(),
        };
        given::<Order>([]).when(create.clone()).then([created()]);
        given::<Order>([created()])
            .when(create)
            .then_err(Error::AlreadyExists);
        assert_eq!(given::<Order>([created()]).state().status, Status::Pending);
    }

    #[test]
    fn creation_is_validated_in_the_books_order() {
        let create = |customer: &str, payment: &str, items| Command::Create {
            customer_id: customer.into(),
            payment_id: payment.into(),
            items,
        };
        given::<Order>([])
            .when(create("", "", vec![]))
            .then_err(Error::NoItems);
        given::<Order>([])
            .when(create("", "", items()))
            .then_err(Error::BlankCustomer);
        given::<Order>([])
            .when(create("c", "", items()))
            .then_err(Error::BlankPayment);
    }

    #[test]
    fn the_happy_path_runs_pending_approved_ready_completed() {
        given::<Order>([created()])
            .when(Command::Approve {
                shopping_id: "list".into(),
            })
            .then([approved()]);
        // Counted in cents: 9.99 × 5 + 1.00 × 2 is 51.95, not 51.949999999999996.
        let total = 51.95;
        given::<Order>([created(), approved()])
            .when(Command::Ready)
            .then([Event::Readied {
                customer_id: "c1".into(),
                payment_id: "pay".into(),
                total,
            }]);
        let readied = Event::Readied {
            customer_id: "c1".into(),
            payment_id: "pay".into(),
            total,
        };
        given::<Order>([created(), approved(), readied])
            .when(Command::Complete {
                invoice_id: "inv".into(),
            })
            .then([Event::Completed {
                invoice_id: "inv".into(),
                customer_id: "c1".into(),
            }]);
    }

    #[test]
    fn items_beyond_the_bounds_are_refused() {
        let create = |quantity, price| Command::Create {
            customer_id: "c1".into(),
            payment_id: "pay".into(),
            items: vec![Item {
                quantity,
                price,
                ..items()[0].clone()
            }],
        };
        for (quantity, price) in [(0, 1.0), (-2, 1.0), (10_001, 1.0), (1, -0.01), (1, 1e300)] {
            given::<Order>([])
                .when(create(quantity, price))
                .then_err(Error::BadItem);
        }
    }

    #[test]
    fn only_legal_transitions_are_accepted() {
        given::<Order>([created()])
            .when(Command::Ready)
            .then_err(Error::CannotReady);
        given::<Order>([created()])
            .when(Command::Complete {
                invoice_id: "i".into(),
            })
            .then_err(Error::CannotComplete);
        given::<Order>([created(), approved()])
            .when(Command::Cancel)
            .then_err(Error::CannotCancel);
        given::<Order>([created(), approved()])
            .when(Command::Reject)
            .then_err(Error::CannotReject);
        let cancelled = Event::Cancelled {
            customer_id: "c1".into(),
            payment_id: "pay".into(),
        };
        // A late approval of a cancelled order is refused (the saga then compensates).
        given::<Order>([created(), cancelled])
            .when(Command::Approve {
                shopping_id: "l".into(),
            })
            .then_err(Error::CannotApprove);
    }

    #[test]
    fn rejecting_a_closed_order_again_changes_nothing() {
        let cancelled = Event::Cancelled {
            customer_id: "c1".into(),
            payment_id: "pay".into(),
        };
        given::<Order>([created(), cancelled])
            .when(Command::Reject)
            .then([]);
        let rejected = Event::Rejected {
            customer_id: "c1".into(),
            payment_id: "pay".into(),
        };
        given::<Order>([created(), rejected])
            .when(Command::Reject)
            .then([]);
    }

    #[test]
    fn a_pending_order_is_rejected_or_cancelled() {
        given::<Order>([created()])
            .when(Command::Reject)
            .then([Event::Rejected {
                customer_id: "c1".into(),
                payment_id: "pay".into(),
            }]);
        given::<Order>([created()])
            .when(Command::Cancel)
            .then([Event::Cancelled {
                customer_id: "c1".into(),
                payment_id: "pay".into(),
            }]);
    }

    #[test]
    fn commands_for_an_unknown_order_are_not_found() {
        given::<Order>([])
            .when(Command::Cancel)
            .then_err(Error::NotFound);
        given::<Order>([])
            .when(Command::Ready)
            .then_err(Error::NotFound);
    }
}
