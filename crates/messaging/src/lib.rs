//! Asynchronous messaging with the book's wire format, losing nothing.
//!
//! - [`Envelope`]: the Go-compatible `StreamMessage` codec.
//! - [`Broker`]: NATS [`JetStream`] or the [`Embedded`] log, one contract.
//! - [`Outbox`]: stage messages in the business transaction; [`outbox::relay`] publishes them.
//! - [`Subscription`] + [`Handler`]: inbox de-duplication, retries with back-off, dead letters
//!   ([`subscription::run`]), per-aggregate order.
//! - [`CommandHandler`] + [`replying`]: commands answered with replies, per the saga contract.
//! - [`events`], [`commands`]: a subscription built from the payload types its handler takes
//!   ([`On`], [`Answer`], [`messages!`]).
//! - [`dlq`]: list, show, replay and discard dead letters.
//! - [`rewind`]: read a consumer again from the start of the stream, rebuilding its model.

mod broker;
mod command;
pub mod dlq;
pub mod embedded;
mod envelope;
pub mod inbox;
mod jetstream;
mod leases;
mod message;
pub mod outbox;
pub mod ownership;
pub mod rewind;
pub mod routes;
pub mod subscription;
mod tables;
pub mod testing;

pub use broker::{Broker, BrokerError, Consumer, ConsumerSpec, Delivery, Outgoing, PublishError};
pub use command::{CommandError, CommandHandler, Reply, replying};
pub use embedded::Embedded;
pub use envelope::{DecodeError, Envelope, Metadata, from_timestamp, timestamp};
pub use jetstream::{JetStream, NatsAuth, StreamLimits};
pub use message::{AGGREGATE_ID_KEY, Incoming, Message};
pub use outbox::{Outbox, RelayConfig};
pub use ownership::Owners;
pub use proto::{Kind, Payload};
pub use routes::{
    Answer, Answered, Handled, IntoRouted, Messages, On, Reset, Routed, Routes, commands, events,
};
pub use subscription::{Handler, HandlerError, RetryPolicy, Subscription};
pub use tables::MIGRATIONS;
