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

pub use catalog::{CATALOG, Kind, MessageSpec, spec};

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
    /// Reply name of a command handled without a specific reply.
    pub const SUCCESS_REPLY: &str = "am.Success";
    /// Reply name of a command that failed without a specific reply.
    pub const FAILURE_REPLY: &str = "am.Failure";
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

    pub const STORE_AGGREGATE_CHANNEL: &str = "mallbots.stores.events.Store";
    pub const PRODUCT_AGGREGATE_CHANNEL: &str = "mallbots.stores.events.Product";

    pub const STORE_CREATED_EVENT: &str = "storesapi.StoreCreated";
    /// "Participating", not "Participation": the book's name, kept byte-exact.
    pub const STORE_PARTICIPATION_TOGGLED_EVENT: &str = "storesapi.StoreParticipatingToggled";
    pub const STORE_REBRANDED_EVENT: &str = "storesapi.StoreRebranded";
    pub const PRODUCT_ADDED_EVENT: &str = "storesapi.ProductAdded";
    pub const PRODUCT_REBRANDED_EVENT: &str = "storesapi.ProductRebranded";
    pub const PRODUCT_PRICE_INCREASED_EVENT: &str = "storesapi.ProductPriceIncreased";
    pub const PRODUCT_PRICE_DECREASED_EVENT: &str = "storesapi.ProductPriceDecreased";
    pub const PRODUCT_REMOVED_EVENT: &str = "storesapi.ProductRemoved";
}

/// `customerspb`: customers and the AuthorizeCustomer command.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod customers {
    include!(concat!(env!("OUT_DIR"), "/customerspb.rs"));

    pub const CUSTOMER_AGGREGATE_CHANNEL: &str = "mallbots.customers.events.Customer";
    pub const COMMAND_CHANNEL: &str = "mallbots.customers.commands";

    pub const CUSTOMER_REGISTERED_EVENT: &str = "customersapi.CustomerRegistered";
    pub const CUSTOMER_SMS_CHANGED_EVENT: &str = "customersapi.CustomerSmsChanged";
    pub const CUSTOMER_ENABLED_EVENT: &str = "customersapi.CustomerEnabled";
    pub const CUSTOMER_DISABLED_EVENT: &str = "customersapi.CustomerDisabled";
    /// Not the book's: every module forgets the customer's personal data.
    pub const CUSTOMER_ERASED_EVENT: &str = "customersapi.CustomerErased";

    pub const AUTHORIZE_CUSTOMER_COMMAND: &str = "customersapi.AuthorizeCustomer";
}

/// `basketspb`: shopping baskets.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod baskets {
    include!(concat!(env!("OUT_DIR"), "/basketspb.rs"));

    pub const BASKET_AGGREGATE_CHANNEL: &str = "mallbots.baskets.events.Basket";

    pub const BASKET_STARTED_EVENT: &str = "basketsapi.BasketStarted";
    pub const BASKET_CANCELED_EVENT: &str = "basketsapi.BasketCanceled";
    pub const BASKET_CHECKED_OUT_EVENT: &str = "basketsapi.BasketCheckedOut";
}

/// `paymentspb`: payments and invoices.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod payments {
    include!(concat!(env!("OUT_DIR"), "/paymentspb.rs"));

    pub const INVOICE_AGGREGATE_CHANNEL: &str = "mallbots.payments.events.Invoice";
    pub const COMMAND_CHANNEL: &str = "mallbots.payments.commands";

    pub const INVOICE_PAID_EVENT: &str = "paymentsapi.InvoicePaid";

    pub const CONFIRM_PAYMENT_COMMAND: &str = "paymentsapi.ConfirmPayment";
}

/// `orderingpb`: orders. Message names use the book's `ordersapi.` prefix.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod ordering {
    include!(concat!(env!("OUT_DIR"), "/orderingpb.rs"));

    pub const ORDER_AGGREGATE_CHANNEL: &str = "mallbots.ordering.events.Order";
    pub const COMMAND_CHANNEL: &str = "mallbots.ordering.commands";

    pub const ORDER_CREATED_EVENT: &str = "ordersapi.OrderCreated";
    pub const ORDER_REJECTED_EVENT: &str = "ordersapi.OrderRejected";
    pub const ORDER_APPROVED_EVENT: &str = "ordersapi.OrderApproved";
    pub const ORDER_READIED_EVENT: &str = "ordersapi.OrderReadied";
    pub const ORDER_CANCELED_EVENT: &str = "ordersapi.OrderCanceled";
    pub const ORDER_COMPLETED_EVENT: &str = "ordersapi.OrderCompleted";

    pub const REJECT_ORDER_COMMAND: &str = "ordersapi.RejectOrder";
    pub const APPROVE_ORDER_COMMAND: &str = "ordersapi.ApproveOrder";
}

/// `depotpb`: shopping lists for the bots.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod depot {
    include!(concat!(env!("OUT_DIR"), "/depotpb.rs"));

    pub const SHOPPING_LIST_AGGREGATE_CHANNEL: &str = "mallbots.depot.events.ShoppingList";
    pub const COMMAND_CHANNEL: &str = "mallbots.depot.commands";

    pub const SHOPPING_LIST_COMPLETED_EVENT: &str = "depotapi.ShoppingListCompleted";

    pub const CREATE_SHOPPING_LIST_COMMAND: &str = "depotapi.CreateShoppingListCommand";
    pub const CANCEL_SHOPPING_LIST_COMMAND: &str = "depotapi.CancelShoppingListCommand";
    pub const INITIATE_SHOPPING_COMMAND: &str = "depotapi.InitiateShoppingCommand";

    pub const CREATED_SHOPPING_LIST_REPLY: &str = "depotapi.CreatedShoppingListReply";
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
