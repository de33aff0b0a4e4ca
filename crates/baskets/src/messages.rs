//! Basket events → the book's `basketsapi.*` integration events.

use messaging::Message;
use proto::baskets as pb;

use crate::domain::basket::Event;

/// The integration event of a basket event, if it has one (item changes stay inside).
pub(crate) fn event(envelope: &es::Envelope<Event>) -> Option<Message> {
    let id = envelope.aggregate_id.clone();
    let message = match &envelope.event {
        Event::Started { customer_id } => Message::of(&pb::BasketStarted {
            id,
            customer_id: customer_id.clone(),
        }),
        Event::Canceled => Message::of(&pb::BasketCanceled { id }),
        Event::CheckedOut {
            payment_id,
            customer_id,
            items,
        } => {
            let items = items
                .iter()
                .map(|item| pb::basket_checked_out::Item {
                    store_id: item.store_id.clone(),
                    product_id: item.product_id.clone(),
                    store_name: item.store_name.clone(),
                    product_name: item.product_name.clone(),
                    price: item.price,
                    quantity: item.quantity,
                })
                .collect();
            let payload = pb::BasketCheckedOut {
                id,
                customer_id: customer_id.clone(),
                payment_id: payment_id.clone(),
                items,
            };
            Message::of(&payload)
        }
        Event::ItemAdded { .. } | Event::ItemRemoved { .. } => return None,
    };
    let mut message = message
        .about(&envelope.aggregate_id)
        .occurred_at(envelope.occurred_at);
    message.envelope.id.clone_from(&envelope.event_id);
    Some(message)
}
