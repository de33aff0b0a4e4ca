//! A durable pull consumer of the stream, and its deliveries: each holds a lease (ADR 20)
//! renewed with progress acks while it is worked on.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{DeliverPolicy, pull},
    context::ConsumerInfoErrorKind,
    stream,
};
use async_trait::async_trait;
use futures::{FutureExt as _, StreamExt as _};

use super::JetStream;
use crate::{
    broker::{BrokerError, Consumer, ConsumerSpec, Delivery, siblings},
    leases::{Lease, Leases},
};

/// What a delivery's reply subject takes to restart its ack-wait clock.
const PROGRESS: &[u8] = b"+WPI";

pub(super) struct JetStreamConsumer {
    broker: JetStream,
    messages: pull::Stream,
    /// Every delivery not yet settled, renewed while it is worked on.
    leases: Arc<Leases<async_nats::Subject>>,
}

impl JetStreamConsumer {
    /// Opens the durable consumer `spec` on `stream` (creating it if needed, else updating its
    /// editable settings) and starts pulling.
    pub(super) async fn open(
        broker: &JetStream,
        stream: &stream::Stream,
        spec: &ConsumerSpec,
    ) -> Result<JetStreamConsumer, BrokerError> {
        // A consumer readied for a new owner starts at a sequence: kept, since the server
        // refuses to change where a consumer starts.
        let deliver_policy = match stream.consumer_info(&spec.durable).await {
            Ok(info) => info.config.deliver_policy,
            Err(_) => DeliverPolicy::All,
        };
        // Created, or updated to `config` when it exists: a consumer made by an older version
        // takes the current ack wait (an editable field on every server we support).
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(config(broker, spec, deliver_policy))
            .await
            .map_err(|e| BrokerError::Nats(format!("consumer {}: {e}", spec.durable)))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(64)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| BrokerError::Nats(format!("consumer {}: {e}", spec.durable)))?;
        let client = broker.client.clone();
        let leases = Leases::start(spec.ack_wait, move |replies: Vec<async_nats::Subject>| {
            let client = client.clone();
            Box::pin(async move {
                for reply in replies {
                    // A lost renewal costs a redelivery, which the inbox absorbs.
                    if let Err(error) = client.publish(reply, PROGRESS.into()).await {
                        tracing::debug!(%error, "renewing a delivery's lease failed");
                    }
                }
            })
        });
        Ok(JetStreamConsumer {
            broker: broker.clone(),
            messages,
            leases,
        })
    }

    fn delivery(&self, message: jetstream::Message) -> Box<dyn Delivery> {
        let attempt = message.info().map(|info| info.delivered).unwrap_or(1);
        let subject = self.broker.logical(message.subject.as_str());
        let lease = message.reply.clone().map(|reply| self.leases.take(reply));
        Box::new(JetStreamDelivery {
            message,
            subject,
            attempt: u32::try_from(attempt).unwrap_or(1),
            lease,
        })
    }
}

#[async_trait]
impl Consumer for JetStreamConsumer {
    async fn next(&mut self) -> Result<Box<dyn Delivery>, BrokerError> {
        match self.messages.next().await {
            Some(Ok(message)) => Ok(self.delivery(message)),
            Some(Err(e)) => Err(BrokerError::Nats(e.to_string())),
            None => Err(BrokerError::Nats(
                "the consumer's message stream ended".to_owned(),
            )),
        }
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<Box<dyn Delivery>>, BrokerError> {
        let mut batch = vec![self.next().await?];
        // What the last pull already brought in: polled once, never waited for.
        while batch.len() < max {
            match self.messages.next().now_or_never() {
                Some(Some(Ok(message))) => batch.push(self.delivery(message)),
                Some(Some(Err(error))) => {
                    // The next call reports a lasting failure; this batch is still good.
                    tracing::debug!(%error, "pull stream error after a batch");
                    break;
                }
                Some(None) | None => break,
            }
        }
        Ok(batch)
    }
}

/// What every consumer of ours is, starting at `deliver_policy`.
fn config(broker: &JetStream, spec: &ConsumerSpec, deliver_policy: DeliverPolicy) -> pull::Config {
    pull::Config {
        durable_name: Some(spec.durable.clone()),
        filter_subject: broker.physical(&spec.subject),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: spec.ack_wait,
        max_deliver: -1,
        deliver_policy,
        max_ack_pending: 1024,
        ..Default::default()
    }
}

/// Readies `spec` for a new owner: deleted (which ends every pull request a previous owner
/// still had open on it, and everything it held) and created again, starting after what it —
/// or, new, its subscription's other consumers — had acknowledged.
pub(super) async fn take_over(
    broker: &JetStream,
    stream: &stream::Stream,
    spec: &ConsumerSpec,
) -> Result<(), BrokerError> {
    let failed =
        |e: &dyn std::fmt::Display| BrokerError::Nats(format!("consumer {}: {e}", spec.durable));
    let floor = |name: String| async move {
        match stream.consumer_info(&name).await {
            Ok(info) => Ok(Some(info.ack_floor.stream_sequence)),
            Err(error) if matches!(error.kind(), ConsumerInfoErrorKind::NotFound) => Ok(None),
            Err(error) => Err(failed(&error)),
        }
    };
    let own = floor(spec.durable.clone()).await?;
    let mut names = Vec::new();
    let mut listed = stream.consumer_names();
    while let Some(name) = listed.next().await {
        names.push(name.map_err(|e| failed(&e))?);
    }
    let mut theirs: Option<u64> = None;
    for name in siblings(&spec.durable, &names) {
        if let Some(floor) = floor(name.to_owned()).await? {
            theirs = Some(theirs.map_or(floor, |least| least.min(floor)));
        }
    }
    if own.is_some() {
        stream
            .delete_consumer(&spec.durable)
            .await
            .map_err(|e| failed(&e))?;
    }
    let deliver_policy = match own.max(theirs) {
        Some(floor) => DeliverPolicy::ByStartSequence {
            start_sequence: floor + 1,
        },
        None => DeliverPolicy::All,
    };
    tracing::debug!(consumer = %spec.durable, ?deliver_policy, "consumer readied for its new owner");
    stream
        .create_consumer(config(broker, spec, deliver_policy))
        .await
        .map_err(|e| failed(&e))?;
    Ok(())
}

struct JetStreamDelivery {
    message: jetstream::Message,
    subject: String,
    attempt: u32,
    lease: Option<Lease<async_nats::Subject>>,
}

impl JetStreamDelivery {
    async fn send(&self, kind: AckKind) -> Result<(), BrokerError> {
        if !matches!(kind, AckKind::Progress)
            && let Some(lease) = &self.lease
        {
            lease.release();
        }
        self.message
            .ack_with(kind)
            .await
            .map_err(|e| BrokerError::Nats(e.to_string()))
    }
}

#[async_trait]
impl Delivery for JetStreamDelivery {
    fn subject(&self) -> &str {
        &self.subject
    }

    fn body(&self) -> &[u8] {
        &self.message.payload
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(&self) -> Result<(), BrokerError> {
        self.send(AckKind::Ack).await
    }

    async fn nak(&self, delay: Duration) -> Result<(), BrokerError> {
        self.send(AckKind::Nak(Some(delay))).await
    }

    async fn in_progress(&self) -> Result<(), BrokerError> {
        self.send(AckKind::Progress).await
    }
}
