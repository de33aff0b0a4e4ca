//! Every message that crosses the broker: its name, subject, kind and protobuf type.
//!
//! The one table other code derives from (decoding by name, the AsyncAPI document, tests that
//! a module only sends what is declared), so a message added to a module must be added here.

use crate::{baskets, cosec, customers, depot, ordering, payments, stores};

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fact, published by the module that owns the aggregate.
    Event,
    /// A request to one module, sent by the saga, answered by a reply.
    Command,
    /// The answer to a command, sent to the command's reply channel.
    Reply,
}

/// One message of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSpec {
    /// The registry key carried in `StreamMessage.name`, e.g. `storesapi.StoreCreated`.
    pub name: &'static str,
    /// The subject it is published on. Replies list the create-order saga's reply channel.
    pub subject: &'static str,
    /// The payload's protobuf full name; `None` for the empty `am.Success`/`am.Failure` replies.
    pub payload: Option<&'static str>,
    /// Event, command or reply.
    pub kind: Kind,
    /// The module that sends it.
    pub producer: &'static str,
}

const fn event(
    name: &'static str,
    subject: &'static str,
    payload: &'static str,
    producer: &'static str,
) -> MessageSpec {
    MessageSpec {
        name,
        subject,
        payload: Some(payload),
        kind: Kind::Event,
        producer,
    }
}

const fn command(name: &'static str, subject: &'static str, payload: &'static str) -> MessageSpec {
    MessageSpec {
        name,
        subject,
        payload: Some(payload),
        kind: Kind::Command,
        producer: "cosec",
    }
}

const fn reply(
    name: &'static str,
    payload: Option<&'static str>,
    producer: &'static str,
) -> MessageSpec {
    MessageSpec {
        name,
        subject: cosec::CREATE_ORDER_REPLY_CHANNEL,
        payload,
        kind: Kind::Reply,
        producer,
    }
}

/// Every message of the system.
pub const CATALOG: &[MessageSpec] = &[
    event(
        stores::STORE_CREATED_EVENT,
        stores::STORE_AGGREGATE_CHANNEL,
        "storespb.StoreCreated",
        "stores",
    ),
    event(
        stores::STORE_PARTICIPATION_TOGGLED_EVENT,
        stores::STORE_AGGREGATE_CHANNEL,
        "storespb.StoreParticipationToggled",
        "stores",
    ),
    event(
        stores::STORE_REBRANDED_EVENT,
        stores::STORE_AGGREGATE_CHANNEL,
        "storespb.StoreRebranded",
        "stores",
    ),
    event(
        stores::PRODUCT_ADDED_EVENT,
        stores::PRODUCT_AGGREGATE_CHANNEL,
        "storespb.ProductAdded",
        "stores",
    ),
    event(
        stores::PRODUCT_REBRANDED_EVENT,
        stores::PRODUCT_AGGREGATE_CHANNEL,
        "storespb.ProductRebranded",
        "stores",
    ),
    event(
        stores::PRODUCT_PRICE_INCREASED_EVENT,
        stores::PRODUCT_AGGREGATE_CHANNEL,
        "storespb.ProductPriceChanged",
        "stores",
    ),
    event(
        stores::PRODUCT_PRICE_DECREASED_EVENT,
        stores::PRODUCT_AGGREGATE_CHANNEL,
        "storespb.ProductPriceChanged",
        "stores",
    ),
    event(
        stores::PRODUCT_REMOVED_EVENT,
        stores::PRODUCT_AGGREGATE_CHANNEL,
        "storespb.ProductRemoved",
        "stores",
    ),
    event(
        customers::CUSTOMER_REGISTERED_EVENT,
        customers::CUSTOMER_AGGREGATE_CHANNEL,
        "customerspb.CustomerRegistered",
        "customers",
    ),
    event(
        customers::CUSTOMER_SMS_CHANGED_EVENT,
        customers::CUSTOMER_AGGREGATE_CHANNEL,
        "customerspb.CustomerSmsChanged",
        "customers",
    ),
    event(
        customers::CUSTOMER_ENABLED_EVENT,
        customers::CUSTOMER_AGGREGATE_CHANNEL,
        "customerspb.CustomerEnabled",
        "customers",
    ),
    event(
        customers::CUSTOMER_DISABLED_EVENT,
        customers::CUSTOMER_AGGREGATE_CHANNEL,
        "customerspb.CustomerDisabled",
        "customers",
    ),
    event(
        customers::CUSTOMER_ERASED_EVENT,
        customers::CUSTOMER_AGGREGATE_CHANNEL,
        "customerspb.CustomerErased",
        "customers",
    ),
    event(
        baskets::BASKET_STARTED_EVENT,
        baskets::BASKET_AGGREGATE_CHANNEL,
        "basketspb.BasketStarted",
        "baskets",
    ),
    event(
        baskets::BASKET_CANCELED_EVENT,
        baskets::BASKET_AGGREGATE_CHANNEL,
        "basketspb.BasketCanceled",
        "baskets",
    ),
    event(
        baskets::BASKET_CHECKED_OUT_EVENT,
        baskets::BASKET_AGGREGATE_CHANNEL,
        "basketspb.BasketCheckedOut",
        "baskets",
    ),
    event(
        ordering::ORDER_CREATED_EVENT,
        ordering::ORDER_AGGREGATE_CHANNEL,
        "orderingpb.OrderCreated",
        "ordering",
    ),
    event(
        ordering::ORDER_REJECTED_EVENT,
        ordering::ORDER_AGGREGATE_CHANNEL,
        "orderingpb.OrderRejected",
        "ordering",
    ),
    event(
        ordering::ORDER_APPROVED_EVENT,
        ordering::ORDER_AGGREGATE_CHANNEL,
        "orderingpb.OrderApproved",
        "ordering",
    ),
    event(
        ordering::ORDER_READIED_EVENT,
        ordering::ORDER_AGGREGATE_CHANNEL,
        "orderingpb.OrderReadied",
        "ordering",
    ),
    event(
        ordering::ORDER_CANCELED_EVENT,
        ordering::ORDER_AGGREGATE_CHANNEL,
        "orderingpb.OrderCanceled",
        "ordering",
    ),
    event(
        ordering::ORDER_COMPLETED_EVENT,
        ordering::ORDER_AGGREGATE_CHANNEL,
        "orderingpb.OrderCompleted",
        "ordering",
    ),
    event(
        depot::SHOPPING_LIST_COMPLETED_EVENT,
        depot::SHOPPING_LIST_AGGREGATE_CHANNEL,
        "depotpb.ShoppingListCompleted",
        "depot",
    ),
    event(
        payments::INVOICE_PAID_EVENT,
        payments::INVOICE_AGGREGATE_CHANNEL,
        "paymentspb.InvoicePaid",
        "payments",
    ),
    command(
        customers::AUTHORIZE_CUSTOMER_COMMAND,
        customers::COMMAND_CHANNEL,
        "customerspb.AuthorizeCustomer",
    ),
    command(
        depot::CREATE_SHOPPING_LIST_COMMAND,
        depot::COMMAND_CHANNEL,
        "depotpb.CreateShoppingList",
    ),
    command(
        depot::CANCEL_SHOPPING_LIST_COMMAND,
        depot::COMMAND_CHANNEL,
        "depotpb.CancelShoppingList",
    ),
    command(
        depot::INITIATE_SHOPPING_COMMAND,
        depot::COMMAND_CHANNEL,
        "depotpb.InitiateShopping",
    ),
    command(
        payments::CONFIRM_PAYMENT_COMMAND,
        payments::COMMAND_CHANNEL,
        "paymentspb.ConfirmPayment",
    ),
    command(
        ordering::REJECT_ORDER_COMMAND,
        ordering::COMMAND_CHANNEL,
        "orderingpb.RejectOrder",
    ),
    command(
        ordering::APPROVE_ORDER_COMMAND,
        ordering::COMMAND_CHANNEL,
        "orderingpb.ApproveOrder",
    ),
    reply(
        depot::CREATED_SHOPPING_LIST_REPLY,
        Some("depotpb.CreatedShoppingList"),
        "depot",
    ),
    reply(crate::am::SUCCESS_REPLY, None, "any command handler"),
    reply(crate::am::FAILURE_REPLY, None, "any command handler"),
];

/// The catalog entry for a message name, if the name is known.
pub fn spec(name: &str) -> Option<&'static MessageSpec> {
    CATALOG.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once() {
        let mut names: Vec<_> = CATALOG.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn every_payload_type_is_in_the_compiled_descriptors() {
        let fds =
            <prost_types::FileDescriptorSet as prost::Message>::decode(crate::FILE_DESCRIPTOR_SET)
                .expect("descriptor set decodes");
        let known: Vec<String> = fds
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.message_type
                    .iter()
                    .map(move |m| format!("{package}.{}", m.name()))
            })
            .collect();
        for spec in CATALOG {
            if let Some(payload) = spec.payload {
                assert!(
                    known.iter().any(|k| k == payload),
                    "{payload} of {} is not compiled",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn subjects_live_in_the_stream() {
        for spec in CATALOG {
            assert!(spec.subject.starts_with("mallbots."), "{}", spec.subject);
        }
    }
}
