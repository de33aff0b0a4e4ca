//! Domain events → the book's integration events (`storesapi.*`), one message per event, with
//! the event's id as the message id.

use messaging::Message;
use proto::stores as pb;

use crate::domain::{product, store};

fn message<E>(
    envelope: &es::Envelope<E>,
    subject: &str,
    name: &str,
    payload: &impl prost::Message,
) -> Message {
    let mut message = Message::new(subject, name, payload)
        .about(&envelope.aggregate_id)
        .occurred_at(envelope.occurred_at);
    message.envelope.id.clone_from(&envelope.event_id);
    message
}

pub(crate) fn store_event(envelope: &es::Envelope<store::Event>) -> Message {
    let id = envelope.aggregate_id.clone();
    let channel = pb::STORE_AGGREGATE_CHANNEL;
    match &envelope.event {
        store::Event::Created { name, location, .. } => {
            let payload = pb::StoreCreated {
                id,
                name: name.as_str().into(),
                location: location.as_str().into(),
            };
            message(envelope, channel, pb::STORE_CREATED_EVENT, &payload)
        }
        store::Event::ParticipationEnabled | store::Event::ParticipationDisabled => {
            let participating = matches!(envelope.event, store::Event::ParticipationEnabled);
            let payload = pb::StoreParticipationToggled { id, participating };
            message(
                envelope,
                channel,
                pb::STORE_PARTICIPATION_TOGGLED_EVENT,
                &payload,
            )
        }
        store::Event::Rebranded { name } => {
            let payload = pb::StoreRebranded {
                id,
                name: name.as_str().into(),
            };
            message(envelope, channel, pb::STORE_REBRANDED_EVENT, &payload)
        }
    }
}

pub(crate) fn product_event(envelope: &es::Envelope<product::Event>) -> Message {
    let id = envelope.aggregate_id.clone();
    let channel = pb::PRODUCT_AGGREGATE_CHANNEL;
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
            message(envelope, channel, pb::PRODUCT_ADDED_EVENT, &payload)
        }
        product::Event::Rebranded { name, description } => {
            let payload = pb::ProductRebranded {
                id,
                name: name.as_str().into(),
                description: description.clone(),
            };
            message(envelope, channel, pb::PRODUCT_REBRANDED_EVENT, &payload)
        }
        product::Event::PriceIncreased { delta } => message(
            envelope,
            channel,
            pb::PRODUCT_PRICE_INCREASED_EVENT,
            &pb::ProductPriceChanged { id, delta: *delta },
        ),
        product::Event::PriceDecreased { delta } => message(
            envelope,
            channel,
            pb::PRODUCT_PRICE_DECREASED_EVENT,
            &pb::ProductPriceChanged { id, delta: *delta },
        ),
        product::Event::Removed => message(
            envelope,
            channel,
            pb::PRODUCT_REMOVED_EVENT,
            &pb::ProductRemoved { id },
        ),
    }
}
