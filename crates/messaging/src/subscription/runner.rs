//! The consume loop: reads batches from the broker, decodes them, and hands each message to
//! its lane; rewinds between batches when an operator asks.

use std::{sync::Arc, time::Duration};

use db::Db;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    Handler, Subscription,
    counted::Counted,
    dead_letters::DeadLetterRecord,
    lanes::{Item, Lanes},
    sleep_or_stop,
};
use crate::{
    Embedded, Envelope, Incoming,
    broker::{Broker, Delivery},
    ownership::{Claims, Fence, part_of_key},
};

pub(super) struct Runner {
    pub(super) db: Db,
    pub(super) subscription: Subscription,
    pub(super) handler: Arc<dyn Handler>,
    /// Formatted once: it runs for every message.
    pub(super) insert_inbox: Arc<str>,
    /// Raised when an operator asked for this consumer to be rewound.
    pub(super) rewind: tokio::sync::Notify,
    /// The embedded log, when it lives in `db`: acks then commit with the handler's effects.
    pub(super) log: Option<Embedded>,
    /// The part of a shared consumer this runner handles, when it is one.
    pub(super) share: Option<Share>,
}

/// One part of a consumer shared by replicas, held at one epoch (ADR 23).
pub(crate) struct Share {
    pub(crate) part: u32,
    pub(crate) epoch: i64,
    /// Checked in every handling transaction.
    pub(crate) fence: Fence,
    /// What the replica holds, as its keeper last renewed it.
    pub(crate) claims: watch::Receiver<Claims>,
    /// Cancelled when a transaction found the part taken over: the runner stops.
    pub(crate) lost: CancellationToken,
}

impl Share {
    /// Whether this part is still surely this replica's, by its own clock.
    pub(crate) fn held(&self) -> bool {
        let claims = self.claims.borrow();
        claims.valid() && claims.held.get(&self.part) == Some(&self.epoch)
    }
}

impl Runner {
    pub(super) fn new(
        db: Db,
        broker: &dyn Broker,
        subscription: Subscription,
        handler: Arc<dyn Handler>,
        share: Option<Share>,
    ) -> Runner {
        let insert_inbox = Arc::from(format!(
            "INSERT INTO {}.inbox (consumer, id, name, subject, received_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (consumer, id) DO NOTHING",
            subscription.schema
        ));
        Counted::start(&subscription);
        let log = broker
            .embedded()
            .filter(|log| log.db().is_same(&db))
            .cloned();
        Runner {
            db,
            subscription,
            handler,
            insert_inbox,
            rewind: tokio::sync::Notify::new(),
            log,
            share,
        }
    }

    /// The part it handles (0 when the consumer is not shared).
    pub(super) fn part(&self) -> u32 {
        self.share.as_ref().map_or(0, |share| share.part)
    }

    /// Whether it may still take deliveries: always, unless its share is no longer surely held.
    fn holds(&self) -> bool {
        self.share.as_ref().is_none_or(Share::held)
    }

    pub(super) async fn consume(
        self: &Arc<Self>,
        broker: Arc<dyn Broker>,
        stop: CancellationToken,
    ) {
        let sub = &self.subscription;
        let mut backoff = Duration::from_millis(100);
        let spec = sub.spec(self.part());
        let mut lanes = Lanes::start(self, &stop);
        'connect: loop {
            let mut consumer = tokio::select! {
                () = stop.cancelled() => break 'connect,
                consumer = broker.consumer(&spec) => match consumer {
                    Ok(consumer) => consumer,
                    Err(error) => {
                        tracing::warn!(consumer = %sub.consumer, %error, retry_in = ?backoff, "cannot open consumer");
                        if sleep_or_stop(backoff, &stop).await { break 'connect; }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue 'connect;
                    }
                },
            };
            backoff = Duration::from_millis(100);
            loop {
                let batch = tokio::select! {
                    () = stop.cancelled() => break 'connect,
                    () = self.rewind.notified() => {
                        drop(consumer);
                        // Every message handed to a lane is settled before the rewind.
                        lanes.finish().await;
                        if let Err(error) = self.rewind_now(broker.as_ref()).await {
                            tracing::warn!(consumer = %sub.consumer, error = format!("{error:#}"), "rewinding failed; will try again");
                        }
                        lanes = Lanes::start(self, &stop);
                        continue 'connect;
                    }
                    batch = consumer.next_batch(sub.most()) => batch,
                };
                match batch {
                    Ok(deliveries) if !self.holds() => {
                        // Taken after the share was lost (a pause, a keeper that could not
                        // renew): back to the broker at once, for the new owner, in order.
                        for delivery in deliveries {
                            super::deliver::settle(
                                delivery.nak(Duration::ZERO).await,
                                &sub.consumer,
                            );
                        }
                        tracing::info!(consumer = %spec.durable, "share lost; stopping");
                        break 'connect;
                    }
                    Ok(deliveries) => {
                        let caught_up = deliveries.len() < sub.most();
                        for delivery in deliveries {
                            if let Some(item) = self.route(delivery).await {
                                lanes.send(item).await;
                            }
                        }
                        if caught_up
                            && !sub.linger.is_zero()
                            && sleep_or_stop(sub.linger, &stop).await
                        {
                            break 'connect;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(consumer = %sub.consumer, %error, "consumer failed; reopening");
                        if sleep_or_stop(backoff, &stop).await {
                            break 'connect;
                        }
                        continue 'connect;
                    }
                }
            }
        }
        lanes.finish().await;
    }

    /// Decodes a delivery: one for this subscription becomes a lane's item; bad bytes are
    /// dead-lettered and names it does not handle acked, here.
    async fn route(&self, delivery: Box<dyn Delivery>) -> Option<Item> {
        let sub = &self.subscription;
        let envelope = match Envelope::decode(delivery.body()) {
            Ok(envelope) => envelope,
            Err(error) => {
                let id = format!("undecodable-{}", uuid::Uuid::new_v4());
                let dead = DeadLetterRecord {
                    id: &id,
                    name: "",
                    subject: delivery.subject(),
                    body: delivery.body(),
                    error: &error.to_string(),
                    attempts: delivery.attempt(),
                };
                self.dead_letter(delivery.as_ref(), dead).await;
                return None;
            }
        };
        if !sub.accepts(&envelope.name) {
            if proto::spec(&envelope.name).is_none() {
                tracing::warn!(consumer = %sub.consumer, name = %envelope.name, id = %envelope.id, "unknown message name; skipped");
            }
            super::deliver::settle(delivery.ack().await, &sub.consumer);
            return None;
        }
        if let Some(share) = &self.share {
            let key = envelope
                .metadata
                .get(crate::AGGREGATE_ID_KEY)
                .map(String::as_str);
            if part_of_key(key, sub.parts) != share.part {
                // Another part's: its own consumer delivers it to its owner.
                super::deliver::settle(delivery.ack().await, &sub.consumer);
                return None;
            }
        }
        let incoming = Incoming {
            subject: delivery.subject().to_owned(),
            envelope,
            attempt: delivery.attempt(),
        };
        let span = tracing::info_span!("handle", otel.name = format!("handle {}", incoming.name()),
            otel.kind = "consumer", module = sub.schema, consumer = %sub.consumer,
            messaging.message.id = %incoming.id(), attempt = incoming.attempt);
        telemetry::adopt(&span, &telemetry::MapRef(&incoming.envelope.metadata));
        let counted = Counted::new(sub, incoming.name());
        counted.count("messages_received_total");
        Some(Item {
            delivery,
            incoming,
            span,
            counted,
        })
    }
}
