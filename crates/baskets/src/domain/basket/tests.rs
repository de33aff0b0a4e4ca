use es::testing::given;

use super::*;

fn item(product: &str, quantity: i32) -> Item {
    Item {
        store_id: "s1".into(),
        store_name: "Store ABC".into(),
        product_id: product.into(),
        product_name: "Product ABC".into(),
        price: 9.99,
        quantity,
    }
}

fn started() -> Event {
    Event::Started {
        customer_id: "c1".into(),
    }
}

#[test]
fn a_basket_is_started_for_a_customer() {
    given::<Basket>([])
        .when(Command::Start {
            customer_id: "c1".into(),
        })
        .then([started()]);
    given::<Basket>([])
        .when(Command::Start {
            customer_id: " ".into(),
        })
        .then_err(Error::BlankCustomer);
    given::<Basket>([started()])
        .when(Command::Start {
            customer_id: "c1".into(),
        })
        .then_err(Error::NotOpen);
}

#[test]
fn commands_for_an_unknown_basket_are_not_found() {
    given::<Basket>([])
        .when(Command::Cancel)
        .then_err(Error::NotFound);
    given::<Basket>([])
        .when(Command::AddItem {
            item: item("p1", 1),
        })
        .then_err(Error::NotFound);
}

#[test]
fn items_add_up_and_come_off_until_the_line_is_gone() {
    let basket = given::<Basket>([
        started(),
        Event::ItemAdded {
            item: item("p1", 2),
        },
        Event::ItemAdded {
            item: item("p1", 3),
        },
    ]);
    assert_eq!(
        basket
            .state()
            .items()
            .map(|i| i.quantity)
            .collect::<Vec<_>>(),
        [5]
    );
    let basket = given::<Basket>([
        started(),
        Event::ItemAdded {
            item: item("p1", 5),
        },
        Event::ItemRemoved {
            product_id: "p1".into(),
            quantity: 4,
        },
    ]);
    assert_eq!(
        basket
            .state()
            .items()
            .map(|i| i.quantity)
            .collect::<Vec<_>>(),
        [1]
    );
    let basket = given::<Basket>([
        started(),
        Event::ItemAdded {
            item: item("p1", 5),
        },
        Event::ItemRemoved {
            product_id: "p1".into(),
            quantity: 5,
        },
    ]);
    assert_eq!(basket.state().items().count(), 0);
}

#[test]
fn removing_more_than_is_held_is_refused() {
    given::<Basket>([
        started(),
        Event::ItemAdded {
            item: item("p1", 2),
        },
    ])
    .when(Command::RemoveItem {
        product_id: "p1".into(),
        quantity: 3,
    })
    .then_err(Error::NotThatMany);
    given::<Basket>([started()])
        .when(Command::RemoveItem {
            product_id: "p9".into(),
            quantity: 1,
        })
        .then_err(Error::NotThatMany);
}

#[test]
fn quantities_cannot_be_negative() {
    given::<Basket>([started()])
        .when(Command::AddItem {
            item: item("p1", -1),
        })
        .then_err(Error::NegativeQuantity);
    given::<Basket>([started()])
        .when(Command::RemoveItem {
            product_id: "p1".into(),
            quantity: -1,
        })
        .then_err(Error::NegativeQuantity);
    given::<Basket>([started()])
        .when(Command::AddItem {
            item: item("p1", 0),
        })
        .then([]);
}

#[test]
fn checkout_needs_items_and_a_payment() {
    given::<Basket>([started()])
        .when(Command::Checkout {
            payment_id: "pay".into(),
        })
        .then_err(Error::NoItems);
    let with_item = [
        started(),
        Event::ItemAdded {
            item: item("p1", 1),
        },
    ];
    given::<Basket>(with_item.clone())
        .when(Command::Checkout {
            payment_id: String::new(),
        })
        .then_err(Error::BlankPayment);
    given::<Basket>(with_item)
        .when(Command::Checkout {
            payment_id: "pay".into(),
        })
        .then([Event::CheckedOut {
            payment_id: "pay".into(),
            customer_id: "c1".into(),
            items: vec![item("p1", 1)],
        }]);
}

#[test]
fn a_closed_basket_cannot_change() {
    let checked_out = [
        started(),
        Event::ItemAdded {
            item: item("p1", 1),
        },
        Event::CheckedOut {
            payment_id: "pay".into(),
            customer_id: "c1".into(),
            items: vec![item("p1", 1)],
        },
    ];
    given::<Basket>(checked_out.clone())
        .when(Command::AddItem {
            item: item("p2", 1),
        })
        .then_err(Error::NotOpen);
    given::<Basket>(checked_out)
        .when(Command::Cancel)
        .then_err(Error::CannotCancel);
    given::<Basket>([started(), Event::Canceled])
        .when(Command::Checkout {
            payment_id: "p".into(),
        })
        .then_err(Error::NotOpen);
}

#[test]
fn cancelling_empties_the_basket() {
    let basket = given::<Basket>([
        started(),
        Event::ItemAdded {
            item: item("p1", 1),
        },
        Event::Canceled,
    ]);
    assert_eq!(basket.state().items().count(), 0);
    given::<Basket>([started()])
        .when(Command::Cancel)
        .then([Event::Canceled]);
}
