use messaging::{Message, testing::delivered};

use super::*;

#[test]
fn a_checkout_is_a_pending_order_with_its_total() {
    let event = baskets::BasketCheckedOut {
        id: "o-1".into(),
        customer_id: "c-1".into(),
        payment_id: "p-1".into(),
        items: vec![baskets::basket_checked_out::Item {
            price: 0.1,
            quantity: 3,
            ..Default::default()
        }],
    };
    let message = Message::of(&event);
    let about = about(&delivered(message)).unwrap();
    assert_eq!(
        about,
        Some(About {
            order: "o-1".into(),
            status: Some((
                Status::Pending,
                Placed {
                    customer: "c-1".into(),
                    items: 3,
                    total: money::Cents::from_amount(0.3).unwrap(),
                }
            )),
        })
    );
}

#[test]
fn commands_and_replies_are_about_their_saga() {
    let command = Message::from_bytes(
        depot::COMMAND_CHANNEL,
        depot::CREATE_SHOPPING_LIST_COMMAND,
        Vec::new(),
    )
    .with_metadata(saga::SAGA_ID_HDR, "o-2");
    let about_command = about(&delivered(command)).unwrap();
    assert_eq!(about_command.map(|a| a.order).as_deref(), Some("o-2"));
    let reply = Message::from_bytes(
        proto::cosec::CREATE_ORDER_REPLY_CHANNEL,
        proto::am::SUCCESS_REPLY,
        Vec::new(),
    )
    .with_metadata("REPLY_SAGA_ID", "o-2");
    let about_reply = about(&delivered(reply)).unwrap();
    assert_eq!(about_reply.map(|a| a.order).as_deref(), Some("o-2"));
}

fn change(order: &str, status: Status, customer: &str, at: i64) -> Move {
    Move {
        id: order.into(),
        customer_id: customer.into(),
        status,
        items: 1,
        total: money::Cents::default(),
        created_at: at,
        updated_at: at,
    }
}

#[test]
fn a_batch_moves_each_order_once_as_its_messages_would_one_by_one() {
    let mut moves = Vec::new();
    for change in [
        change("o-1", Status::Pending, "c-1", 1),
        change("o-2", Status::Approved, "", 2),
        change("o-1", Status::Approved, "", 3),
        change("o-2", Status::Pending, "c-2", 4),
        change("o-1", Status::Completed, "", 5),
        change("o-1", Status::Cancelled, "", 6),
    ] {
        merge(&mut moves, change);
    }
    let seen: Vec<_> = moves
        .iter()
        .map(|m| {
            (
                m.id.as_str(),
                m.status.as_str(),
                m.customer_id.as_str(),
                m.created_at,
                m.updated_at,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            // Inserted as the checkout says; the first final status wins.
            ("o-1", "completed", "c-1", 1, 5),
            // A later message never moves an order back.
            ("o-2", "approved", "", 2, 2),
        ]
    );
}

#[test]
fn messages_about_no_order_are_not_recorded() {
    let message = Message::from_bytes(
        proto::stores::STORE_AGGREGATE_CHANNEL,
        proto::stores::STORE_CREATED_EVENT,
        Vec::new(),
    );
    assert_eq!(about(&delivered(message)).unwrap(), None);
}

#[test]
fn it_reads_the_saga_and_the_orders_life_and_nothing_else() {
    let names = recorded();
    for name in [
        depot::CREATE_SHOPPING_LIST_COMMAND,
        proto::am::SUCCESS_REPLY,
        depot::CREATED_SHOPPING_LIST_REPLY,
        ordering::ORDER_COMPLETED_EVENT,
        payments::INVOICE_PAID_EVENT,
    ] {
        assert!(names.contains(&name), "{name}");
    }
    assert!(!names.contains(&proto::stores::STORE_CREATED_EVENT));
    assert!(!names.contains(&baskets::BASKET_STARTED_EVENT));
}

#[test]
fn a_canceled_list_is_about_its_order() {
    let canceled = depot::ShoppingListCanceled {
        id: "list-1".into(),
        order_id: "o-1".into(),
    };
    let about = about(&delivered(Message::of(&canceled))).unwrap().unwrap();
    assert_eq!((about.order.as_str(), about.status), ("o-1", None));
}

#[test]
fn a_payload_that_does_not_decode_is_refused() {
    let message = Message::from_bytes(
        ordering::ORDER_AGGREGATE_CHANNEL,
        ordering::ORDER_APPROVED_EVENT,
        vec![0xff, 0xff],
    );
    let refused = about(&delivered(message));
    assert!(matches!(refused, Err(HandlerError::Permanent(_))));
}
