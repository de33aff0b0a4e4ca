//! Domain events → the book's integration events (`storesapi.*`), one message per event, with
//! the event's id as the message id.

use messaging::Message;
use proto::stores as pb;

use crate::domain::{product, store};

fn message<E>(envelope: &es::Envelope<E>, payload: &impl proto::Payload) -> Message {
    let mut message = Message::of(payload)
        .about(&envelope.aggregate_id)
        .occurred_at(envelope.occurred_at);
    message.envelope.id.clone_from(&envelope.event_id);
    message
}

pub(crate) fn store_event(envelope: &es::Envelope<store::Event>) -> Message {
    let id = envelope.aggregate_id.clone();
    match &envelope.event {
        store::Event::Created { name, location, .. } => {
            let payload = pb::StoreCreated {
                id,
                name: name.as_str().into(),
                location: location.as_str().into(),
            };
            message(envelope, &payload)
        }
        store::Event::ParticipationEnabled | store::Event::ParticipationDisabled => {
            let participating = matches!(envelope.event, store::Event::ParticipationEnabled);
            let payload = pb::StoreParticipationToggled { id, participating };
            message(envelope, &payload)
        }
        store::Event::Rebranded { name } => {
            let payload = pb::StoreRebranded {
                id,
                name: name.as_str().into(),
            };
            message(envelope, &payload)
        }
    }
}

pub(crate) fn product_event(envelope: &es::Envelope<product::Event>) -> Message {
    let id = envelope.aggregate_id.clone();
    match &envelope.event {
        product::Event::Added {
            store_id,
            name,
            description,
            sku,
            price,
        } => {
            let payload = pb::ProductAdded {
                id,
                store_id: store_id.clone(),
                name: name.as_str().into(),
                description: description.clone(),
                sku: sku.clone(),
                price: price.value(),
            };
            message(envelope, &payload)
        }
        product::Event::Rebranded { name, description } => {
            let payload = pb::ProductRebranded {
                id,
                name: name.as_str().into(),
                description: description.clone(),
            };
            message(envelope, &payload)
        }
        // Named by the delta's sign, as the domain's two events are.
        product::Event::PriceIncreased { delta } | product::Event::PriceDecreased { delta } => {
            message(envelope, &pb::ProductPriceChanged { id, delta: *delta })
        }
        product::Event::Removed => message(envelope, &pb::ProductRemoved { id }),
    }
}
