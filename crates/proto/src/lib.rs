//! The wire contracts of MallBots, byte-compatible with the book's Go services.
//!
//! Every module talks to another only through what this crate defines: protobuf messages
//! carried over the broker, and the gRPC services used for the few synchronous calls. Field
//! names and numbers, message names (registry keys such as `storesapi.StoreCreated`) and
//! subjects are copied from the book and must not change; additions are appended fields only.
//!
//! Each module's package (`storespb`, …) is re-exported under the module's name together with
//! its subjects and message names. [`CATALOG`] lists every message that crosses the broker.

mod catalog;

pub use catalog::{CATALOG, Kind, MessageSpec, Payload, spec};

/// The JetStream stream every subject below belongs to (`NATS_STREAM`, default `mallbots`).
pub const STREAM: &str = "mallbots";

/// The compiled descriptors of every file here, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mallbots_descriptor.bin"));

/// The envelope: `jetstream.StreamMessage` and the package-less `*MessageData` types.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod envelope {
    include!(concat!(env!("OUT_DIR"), "/jetstream.rs"));
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// Names the book's asynchronous-messaging layer (`internal/am`) puts on the wire.
pub mod am {
    include!(concat!(env!("OUT_DIR"), "/catalog_am.rs"));
    /// Metadata key a command carries: the subject its reply goes to.
    pub const COMMAND_REPLY_CHANNEL_HDR: &str = "COMMAND_REPLY_CHANNEL";
    /// Prefix of command metadata copied to the reply as `REPLY_…`.
    pub const COMMAND_HDR_PREFIX: &str = "COMMAND_";
    /// Declared by the book, never set; excluded from the `COMMAND_` → `REPLY_` copy.
    pub const COMMAND_NAME_HDR: &str = "COMMAND_NAME";
    /// Prefix of reply metadata.
    pub const REPLY_HDR_PREFIX: &str = "REPLY_";
    /// Metadata key of a reply's outcome.
    pub const REPLY_OUTCOME_HDR: &str = "REPLY_OUTCOME";
    /// `REPLY_OUTCOME` of a successful command.
    pub const OUTCOME_SUCCESS: &str = "SUCCESS";
    /// `REPLY_OUTCOME` of a failed command.
    pub const OUTCOME_FAILURE: &str = "FAILURE";
    /// NATS header carrying the message id (JetStream de-duplication).
    pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
}

/// `storespb`: stores and products.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod stores {
    include!(concat!(env!("OUT_DIR"), "/storespb.rs"));
    include!(concat!(env!("OUT_DIR"), "/catalog_stores.rs"));

    pub const STORE_AGGREGATE_CHANNEL: &str = "mallbots.stores.events.Store";
    pub const PRODUCT_AGGREGATE_CHANNEL: &str = "mallbots.stores.events.Product";

    impl ProductPriceChanged {
        /// The book names a price change by its direction; the domain never changes by zero.
        fn name_in_catalog(&self) -> &'static str {
            if self.delta < 0.0 {
                PRODUCT_PRICE_DECREASED_EVENT
            } else {
                PRODUCT_PRICE_INCREASED_EVENT
            }
        }
    }
}

/// `customerspb`: customers and the AuthorizeCustomer command.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod customers {
    include!(concat!(env!("OUT_DIR"), "/customerspb.rs"));
    include!(concat!(env!("OUT_DIR"), "/catalog_customers.rs"));

    pub const CUSTOMER_AGGREGATE_CHANNEL: &str = "mallbots.customers.events.Customer";
    pub const COMMAND_CHANNEL: &str = "mallbots.customers.commands";
}

/// `basketspb`: shopping baskets.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod baskets {
    include!(concat!(env!("OUT_DIR"), "/basketspb.rs"));
    include!(concat!(env!("OUT_DIR"), "/catalog_baskets.rs"));

    pub const BASKET_AGGREGATE_CHANNEL: &str = "mallbots.baskets.events.Basket";
}

/// `paymentspb`: payments and invoices.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod payments {
    include!(concat!(env!("OUT_DIR"), "/paymentspb.rs"));
    include!(concat!(env!("OUT_DIR"), "/catalog_payments.rs"));

    pub const INVOICE_AGGREGATE_CHANNEL: &str = "mallbots.payments.events.Invoice";
    pub const COMMAND_CHANNEL: &str = "mallbots.payments.commands";
}

/// `orderingpb`: orders. Message names use the book's `ordersapi.` prefix.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod ordering {
    include!(concat!(env!("OUT_DIR"), "/orderingpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/catalog_ordering.rs"));

    pub const ORDER_AGGREGATE_CHANNEL: &str = "mallbots.ordering.events.Order";
    pub const COMMAND_CHANNEL: &str = "mallbots.ordering.commands";
}

/// `depotpb`: shopping lists for the bots.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod depot {
    include!(concat!(env!("OUT_DIR"), "/depotpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/catalog_depot.rs"));

    pub const SHOPPING_LIST_AGGREGATE_CHANNEL: &str = "mallbots.depot.events.ShoppingList";
    pub const COMMAND_CHANNEL: &str = "mallbots.depot.commands";
}

/// `notificationspb`: customer notifications.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod notifications {
    include!(concat!(env!("OUT_DIR"), "/notificationspb.rs"));
}

/// `searchpb`: the order search read model.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod search {
    include!(concat!(env!("OUT_DIR"), "/searchpb.rs"));
}

/// The create-order saga's reply channel.
pub mod cosec {
    /// Where every command the create-order saga sends asks its reply to go.
    pub const CREATE_ORDER_REPLY_CHANNEL: &str = "mallbots.cosec.replies.CreateOrder";
    /// The saga's name (`COMMAND_SAGA_NAME`).
    pub const CREATE_ORDER_SAGA_NAME: &str = "cosec.CreateOrder";
}
