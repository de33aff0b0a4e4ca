//! Customer events → the book's `customersapi.*` integration events.

use messaging::Message;
use proto::customers as pb;

use crate::domain::customer::{Customer, Event};

pub(crate) fn event(customer: &Customer, event: &Event) -> Message {
    let id = customer.id.clone();
    let message = match event {
        Event::Registered => {
            let payload = pb::CustomerRegistered {
                id,
                name: customer.name.clone(),
                sms_number: customer.sms_number.clone(),
            };
            Message::of(&payload)
        }
        Event::SmsChanged => {
            let payload = pb::CustomerSmsChanged {
                id,
                sms_number: customer.sms_number.clone(),
            };
            Message::of(&payload)
        }
        Event::Enabled => Message::of(&pb::CustomerEnabled { id }),
        Event::Disabled => Message::of(&pb::CustomerDisabled { id }),
        Event::Erased => Message::of(&pb::CustomerErased { id }),
    };
    message.about(&customer.id)
}
