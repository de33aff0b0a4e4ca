//! Event sourcing as modules see it: an [`Aggregate`] decides and evolves, an [`EventStore`]
//! loads, appends with optimistic concurrency, runs an [`EventHandler`] in the same
//! transaction, snapshots and upcasts.
//!
//! An aggregate is plain data with two pure functions: `handle` turns a command into events or
//! refuses it, `apply` folds an event into the state. Everything with I/O — the transaction,
//! the version check, read models and outbox rows written alongside — belongs to the store and
//! the handler, never to the aggregate.

mod error;
mod store;
mod tables;
pub mod testing;
mod upcast;

use std::{collections::BTreeMap, fmt::Debug, future::Future};

use serde::{Serialize, de::DeserializeOwned};

pub use error::{ConfigError, Error};
pub use store::{EventStore, Loaded};
pub use tables::MIGRATIONS;
pub use upcast::Upcaster;

/// Key/value context stored with each event: causation, trace context (`traceparent`), …
pub type Metadata = BTreeMap<String, String>;

/// A domain event: a serde type with a stable name per variant.
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static
{
    /// The name stored in `event_name`, e.g. `stores.StoreCreated`. Never change a name that
    /// has been stored; add an [`Upcaster`] instead.
    fn name(&self) -> &'static str;
}

/// A consistency boundary whose state is the fold of its events.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable stream name stored with every event, e.g. `stores.Store`.
    const TYPE: &'static str;
    /// Version of the serialized state used in snapshots. Bump it when the struct changes
    /// shape: older snapshots are then ignored and the events replayed.
    const SNAPSHOT_VERSION: i32 = 1;
    /// Migrations of stored events, per event name (see [`Upcaster`]).
    const UPCASTERS: &'static [Upcaster] = &[];

    /// What callers ask for.
    type Command: Send;
    /// What happened.
    type Event: DomainEvent;
    /// Why a command was refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides. Pure: no I/O, no clock, no randomness; outside data arrives in the command.
    ///
    /// # Errors
    /// The domain's reason to refuse the command.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Evolves. Total: must accept every event ever stored for this aggregate.
    fn apply(&mut self, event: &Self::Event);
}

/// One stored event with its position and context.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<E> {
    /// Unique id of this event (UUID v4); a natural de-duplication key downstream.
    pub event_id: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// 1-based position in the aggregate's stream.
    pub version: i64,
    /// The event.
    pub event: E,
    /// When it was appended.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// Context stored with it.
    pub metadata: Metadata,
}

/// Work that commits or rolls back together with an event append: read models, outbox rows.
///
/// It runs inside the append's transaction; an error rolls the append back.
pub trait EventHandler<A: Aggregate>: Send + Sync + 'static {
    /// Handles the events just appended, in order.
    fn handle(
        &self,
        tx: &mut db::Conn,
        events: &[Envelope<A::Event>],
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// No reactions: the events are only stored.
impl<A: Aggregate> EventHandler<A> for () {
    async fn handle(
        &self,
        _tx: &mut db::Conn,
        _events: &[Envelope<A::Event>],
    ) -> anyhow::Result<()> {
        Ok(())
    }
}
