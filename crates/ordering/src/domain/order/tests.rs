//! The order's rules, given events and a command.

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
