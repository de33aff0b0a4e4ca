//! The `Broker` port: what the outbox relay publishes to and subscriptions consume from.
//! Two implementations share one conformance suite: [`crate::JetStream`] (NATS) and
//! [`crate::Embedded`] (a durable log in the database).

use std::time::Duration;

use async_trait::async_trait;

/// A message on its way out: already encoded, with the id the broker de-duplicates on.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Logical subject, e.g. `mallbots.stores.events.Store`.
    pub subject: &'a str,
    /// The message id (`Nats-Msg-Id`).
    pub id: &'a str,
    /// The `StreamMessage` bytes.
    pub body: &'a [u8],
}

/// What a durable consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Durable name, unique per module and subject (e.g. `search-orders`).
    pub durable: String,
    /// Logical subject it reads.
    pub subject: String,
    /// How long a delivery may stay neither settled nor renewed before it is delivered again.
    /// Consumers renew the deliveries they hold every third of it, so only a crashed or stalled
    /// process lets it run out.
    pub ack_wait: Duration,
}

/// A broker failure. Always worth retrying later: the caller backs off and tries again.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// NATS refused, timed out or is unreachable.
    #[error("nats: {0}")]
    Nats(String),
    /// The embedded broker's database failed.
    #[error("embedded broker: {0}")]
    Database(#[from] sqlx::Error),
}

/// A failed publish of several messages: the first `stored` of them are known stored.
#[derive(Debug, thiserror::Error)]
#[error("publish failed after {stored} stored message(s): {source}")]
pub struct PublishError {
    /// How many leading messages the broker acknowledged.
    pub stored: usize,
    /// Why the next one was not.
    pub source: BrokerError,
}

/// A message broker with durable consumers and explicit acknowledgement.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Stores `messages` in order and returns once the broker acknowledged each of them.
    /// A message whose id was already stored is acknowledged without being stored twice.
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Result<(), PublishError>;

    /// Opens (creating it if needed) the durable consumer `spec`.
    async fn consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BrokerError>;

    /// `Ok` when the broker can take messages now; the reason otherwise.
    async fn check(&self) -> Result<(), String>;

    /// How many messages on the durable consumer `durable` are not yet acknowledged
    /// (undelivered, or delivered and waiting for an ack): its lag. `None` when no such
    /// consumer exists yet.
    async fn lag(&self, durable: &str) -> Result<Option<u64>, BrokerError>;

    /// The embedded log behind this broker, if that is what it is: the outbox relay then
    /// appends to it in the transaction that marks the rows, when they share a database.
    fn embedded(&self) -> Option<&crate::Embedded> {
        None
    }

    /// Readies the durable consumer `spec` for a new owner (ADR 23): everything it has not
    /// acknowledged — what a previous owner still held included — is delivered again at once,
    /// in stream order, before anything newer. A consumer that does not exist yet starts after
    /// what its subscription's other consumers (the same split another way) have all acknowledged; one that
    /// exists starts after the furthest of that and its own acknowledged floor.
    async fn take_over(&self, spec: &ConsumerSpec) -> Result<(), BrokerError>;

    /// Moves the durable consumer `durable` back to the start of the stream: everything the
    /// stream still holds on its subject is delivered again (to rebuild a read model). The
    /// caller reopens the consumer afterwards.
    async fn rewind(&self, durable: &str) -> Result<(), BrokerError>;
}

/// A durable consumer's stream of deliveries.
#[async_trait]
pub trait Consumer: Send {
    /// Waits for the next delivery (a new message, or one due for redelivery).
    async fn next(&mut self) -> Result<Box<dyn Delivery>, BrokerError>;

    /// Waits for at least one delivery, then takes what else is ready now, up to `max` in all,
    /// in delivery order: the unit a subscription handles in one transaction.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Box<dyn Delivery>>, BrokerError> {
        let _ = max;
        Ok(vec![self.next().await?])
    }
}

/// One delivery of one message, to be settled exactly once.
#[async_trait]
pub trait Delivery: Send + Sync {
    /// The logical subject it was published on.
    fn subject(&self) -> &str;
    /// The `StreamMessage` bytes.
    fn body(&self) -> &[u8];
    /// Which delivery this is (1 = first).
    fn attempt(&self) -> u32;
    /// Done: never deliver it again.
    async fn ack(&self) -> Result<(), BrokerError>;
    /// Not done: deliver it again after `delay`.
    async fn nak(&self, delay: Duration) -> Result<(), BrokerError>;
    /// Still working on it: restart the ack-wait clock.
    async fn in_progress(&self) -> Result<(), BrokerError>;

    /// Its position in the [`crate::Embedded`] log, which can ack it inside the handler's own
    /// transaction ([`crate::Embedded::ack_in`]); `None` for other brokers.
    fn log_position(&self) -> Option<i64> {
        None
    }
}

/// The consumers among `names` that hold `durable`'s subscription split another way: the
/// subscription's base name (`orders`) and its parts under another count (`orders-0of4`), when
/// `durable` is one of them.
pub(crate) fn siblings<'a>(durable: &str, names: &'a [String]) -> Vec<&'a str> {
    let (base, own_split) = split(durable);
    names
        .iter()
        .map(String::as_str)
        .filter(|name| *name != durable)
        .filter(|name| {
            let (other_base, split) = split(name);
            other_base == base && (split.is_none() || split != own_split)
        })
        .collect()
}

/// `orders-1of4` → (`orders`, Some(4)); `orders` → (`orders`, None).
fn split(name: &str) -> (&str, Option<&str>) {
    if let Some((base, suffix)) = name.rsplit_once('-')
        && let Some((part, parts)) = suffix.split_once("of")
        && !part.is_empty()
        && part.bytes().all(|b| b.is_ascii_digit())
        && !parts.is_empty()
        && parts.bytes().all(|b| b.is_ascii_digit())
    {
        return (base, Some(parts));
    }
    (name, None)
}

#[cfg(test)]
mod tests {
    use super::siblings;

    #[test]
    fn siblings_are_the_base_and_the_parts_of_other_splits() {
        let names: Vec<String> = [
            "orders",
            "orders-0of2",
            "orders-1of2",
            "orders-0of4",
            "orders-3of4",
            "other",
            "other-0of2",
            "ordersx-0of2",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            siblings("orders-1of4", &names),
            ["orders", "orders-0of2", "orders-1of2"]
        );
        assert_eq!(
            siblings("orders", &names),
            ["orders-0of2", "orders-1of2", "orders-0of4", "orders-3of4"]
        );
    }
}
