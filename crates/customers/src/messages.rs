//! Customer events → the book's `customersapi.*` integration events.

use messaging::Message;
use proto::customers as pb;

use crate::domain::customer::{Customer, Event};

pub(crate) fn event(customer: &Customer, event: &Event) -> Message {
    let id = customer.id.clone();
    let channel = pb::CUSTOMER_AGGREGATE_CHANNEL;
    let message = match event {
        Event::Registered => {
            let payload = pb::CustomerRegistered {
                id,
                name: customer.name.clone(),
                sms_number: customer.sms_number.clone(),
            };
            Message::new(channel, pb::CUSTOMER_REGISTERED_EVENT, &payload)
        }
        Event::SmsChanged => {
            let payload = pb::CustomerSmsChanged {
                id,
                sms_number: customer.sms_number.clone(),
            };
            Message::new(channel, pb::CUSTOMER_SMS_CHANGED_EVENT, &payload)
        }
        Event::Enabled => Message::new(
            channel,
            pb::CUSTOMER_ENABLED_EVENT,
            &pb::CustomerEnabled { id },
        ),
        Event::Disabled => Message::new(
            channel,
            pb::CUSTOMER_DISABLED_EVENT,
            &pb::CustomerDisabled { id },
        ),
        Event::Erased => Message::new(
            channel,
            pb::CUSTOMER_ERASED_EVENT,
            &pb::CustomerErased { id },
        ),
    };
    message.about(&customer.id)
}
