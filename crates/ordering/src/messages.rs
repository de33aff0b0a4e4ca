//! Order events → the book's `ordersapi.*` integration events (all of them, OrderApproved and
//! OrderRejected included: SPEC decisions 1–3).

use messaging::Message;
use proto::ordering as pb;

use crate::domain::order::Event;

pub(crate) fn event(envelope: &es::Envelope<Event>) -> Message {
    let id = envelope.aggregate_id.clone();
    let message = match &envelope.event {
        Event::Created {
            customer_id,
            payment_id,
            items,
        } => {
            let items = items
                .iter()
                .map(|item| pb::order_created::Item {
                    product_id: item.product_id.clone(),
                    store_id: item.store_id.clone(),
                    price: item.price,
                    quantity: item.quantity,
                })
                .collect();
            let payload = pb::OrderCreated {
                id,
                customer_id: customer_id.clone(),
                payment_id: payment_id.clone(),
                shopping_id: String::new(),
                items,
            };
            Message::of(&payload)
        }
        Event::Rejected {
            customer_id,
            payment_id,
        } => {
            let payload = pb::OrderRejected {
                id,
                customer_id: customer_id.clone(),
                payment_id: payment_id.clone(),
            };
            Message::of(&payload)
        }
        Event::Approved {
            customer_id,
            payment_id,
            ..
        } => {
            let payload = pb::OrderApproved {
                id,
                customer_id: customer_id.clone(),
                payment_id: payment_id.clone(),
            };
            Message::of(&payload)
        }
        Event::Cancelled {
            customer_id,
            payment_id,
        } => {
            let payload = pb::OrderCanceled {
                id,
                customer_id: customer_id.clone(),
                payment_id: payment_id.clone(),
            };
            Message::of(&payload)
        }
        Event::Readied {
            customer_id,
            payment_id,
            total,
        } => {
            let payload = pb::OrderReadied {
                id,
                customer_id: customer_id.clone(),
                payment_id: payment_id.clone(),
                total: *total,
            };
            Message::of(&payload)
        }
        Event::Completed {
            invoice_id,
            customer_id,
        } => {
            let payload = pb::OrderCompleted {
                id,
                customer_id: customer_id.clone(),
                invoice_id: invoice_id.clone(),
            };
            Message::of(&payload)
        }
    };
    let mut message = message
        .about(&envelope.aggregate_id)
        .occurred_at(envelope.occurred_at);
    message.envelope.id.clone_from(&envelope.event_id);
    message
}
