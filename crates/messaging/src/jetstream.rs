//! The NATS JetStream broker (async-nats).
//!
//! One stream (`NATS_STREAM`, default `mallbots`) holds every subject. The book hard-codes the
//! `mallbots.` prefix in its subjects; here a stream of another name carries the same subjects
//! under its own prefix (`<stream>.stores.events.Store`), so a renamed stream works and tests
//! can each own one on a shared server. Publishing awaits every PubAck; consumers are durable
//! pull consumers with explicit acks and no server-side delivery limit (dead-lettering is
//! decided by the subscription, which knows why a message failed).

mod auth;
mod consumer;

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use tokio::sync::Mutex;

pub use auth::NatsAuth;
use consumer::JetStreamConsumer;

use crate::broker::{Broker, BrokerError, Consumer, ConsumerSpec, Outgoing, PublishError};

/// The logical prefix every subject of the book starts with.
const LOGICAL_PREFIX: &str = "mallbots";

/// Stream limits; zero means unlimited (the book's stream is unlimited, and a Go service
/// sharing the stream refuses to start if its configuration differs).
#[derive(Debug, Clone, Default)]
pub struct StreamLimits {
    /// Oldest message kept.
    pub max_age: Duration,
    /// Most bytes kept.
    pub max_bytes: i64,
    /// Copies a cluster keeps (0 or 1: one). Applied to an existing stream when above 1 and
    /// different.
    pub replicas: usize,
}

/// A JetStream connection and stream.
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    context: jetstream::Context,
    stream: Arc<str>,
    limits: StreamLimits,
    /// Set once the stream is known to exist; creation is retried until then.
    stream_ready: Arc<Mutex<bool>>,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl JetStream {
    /// Connects to `url` (reconnecting forever in the background: the process starts even if
    /// NATS is down, and reports not ready until it is up).
    ///
    /// # Errors
    /// A URL that cannot be used at all.
    pub async fn connect(
        url: &str,
        stream: &str,
        limits: StreamLimits,
    ) -> Result<JetStream, BrokerError> {
        JetStream::connect_as(url, stream, limits, &NatsAuth::default()).await
    }

    /// [`JetStream::connect`] with credentials and TLS settings.
    ///
    /// # Errors
    /// A credentials file cannot be read, or the server cannot be reached.
    pub async fn connect_as(
        url: &str,
        stream: &str,
        limits: StreamLimits,
        auth: &NatsAuth,
    ) -> Result<JetStream, BrokerError> {
        let client = auth
            .options()
            .await?
            .name("mallbots")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("disconnected from NATS; reconnecting")
                    }
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            })
            .connect(servers(url)?)
            .await
            .map_err(|e| BrokerError::Nats(format!("connecting to {url}: {e}")))?;
        let context = jetstream::new(client.clone());
        Ok(JetStream {
            client,
            context,
            stream: Arc::from(stream),
            limits,
            stream_ready: Arc::new(Mutex::new(false)),
        })
    }

    /// The subject on the wire for a logical `mallbots.…` subject.
    fn physical(&self, subject: &str) -> String {
        match subject.strip_prefix(LOGICAL_PREFIX) {
            Some(rest) if &*self.stream != LOGICAL_PREFIX => format!("{}{rest}", self.stream),
            _ => subject.to_owned(),
        }
    }

    /// The logical subject of a subject on the wire.
    fn logical(&self, subject: &str) -> String {
        match subject.strip_prefix(&*self.stream) {
            Some(rest) if &*self.stream != LOGICAL_PREFIX => format!("{LOGICAL_PREFIX}{rest}"),
            _ => subject.to_owned(),
        }
    }

    async fn ensure_stream(&self) -> Result<jetstream::stream::Stream, BrokerError> {
        let mut ready = self.stream_ready.lock().await;
        let config = stream::Config {
            name: self.stream.to_string(),
            subjects: vec![format!("{}.>", self.stream)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: self.limits.max_age,
            max_bytes: if self.limits.max_bytes > 0 {
                self.limits.max_bytes
            } else {
                -1
            },
            num_replicas: self.limits.replicas.max(1),
            ..Default::default()
        };
        let stream = self
            .context
            .get_or_create_stream(config.clone())
            .await
            .map_err(|e| BrokerError::Nats(format!("stream {}: {e}", self.stream)))?;
        // Limits set explicitly are applied to an existing stream too; unset ones leave it as
        // it is (a Go service sharing the stream refuses to start on a changed configuration).
        let current = &stream.cached_info().config;
        let explicit =
            !self.limits.max_age.is_zero() || self.limits.max_bytes > 0 || self.limits.replicas > 1;
        if explicit
            && (current.max_age != config.max_age
                || current.max_bytes != config.max_bytes
                || current.num_replicas != config.num_replicas)
        {
            tracing::info!(stream = %self.stream, max_age = ?config.max_age, max_bytes = config.max_bytes, "updating stream limits");
            self.context
                .update_stream(config)
                .await
                .map_err(|e| BrokerError::Nats(format!("updating stream {}: {e}", self.stream)))?;
        }
        *ready = true;
        Ok(stream)
    }

    /// A handle on the stream for consumer requests, without asking the server about the
    /// stream first (unlike [`JetStream::ensure_stream`]: one round trip, not two, per scrape).
    async fn stream_handle(&self) -> Result<jetstream::stream::Stream<()>, BrokerError> {
        self.context
            .get_stream_no_info(&*self.stream)
            .await
            .map_err(|e| BrokerError::Nats(format!("stream {}: {e}", self.stream)))
    }

    /// Deletes the stream (tests clean up with it).
    ///
    /// # Errors
    /// NATS refused.
    pub async fn delete_stream(&self) -> Result<(), BrokerError> {
        self.context
            .delete_stream(&*self.stream)
            .await
            .map_err(|e| BrokerError::Nats(e.to_string()))?;
        Ok(())
    }
}

#[async_trait]
impl Broker for JetStream {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Result<(), PublishError> {
        if !*self.stream_ready.lock().await {
            self.ensure_stream()
                .await
                .map_err(|source| PublishError { stored: 0, source })?;
        }
        // Pipelined: send all, then await the acks in order.
        let mut acks = Vec::with_capacity(messages.len());
        for (sent, message) in messages.iter().enumerate() {
            let publish = jetstream::message::PublishMessage::build()
                .payload(bytes::Bytes::copy_from_slice(message.body))
                .message_id(message.id);
            match self
                .context
                .send_publish(self.physical(message.subject), publish)
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    // Whatever was sent before may still be acked: settle those first.
                    let stored = settle(acks).await;
                    debug_assert!(stored <= sent);
                    return Err(PublishError {
                        stored,
                        source: BrokerError::Nats(e.to_string()),
                    });
                }
            }
        }
        let total = acks.len();
        let mut stored = 0;
        for ack in acks {
            if let Err(e) = ack.await {
                return Err(PublishError {
                    stored,
                    source: BrokerError::Nats(e.to_string()),
                });
            }
            stored += 1;
        }
        debug_assert_eq!(stored, total);
        Ok(())
    }

    async fn consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BrokerError> {
        let stream = self.ensure_stream().await?;
        Ok(Box::new(
            JetStreamConsumer::open(self, &stream, spec).await?,
        ))
    }

    async fn take_over(&self, spec: &ConsumerSpec) -> Result<(), BrokerError> {
        let stream = self.ensure_stream().await?;
        consumer::take_over(self, &stream, spec).await
    }

    async fn check(&self) -> Result<(), String> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(format!("NATS connection {state}")),
        }
    }

    async fn rewind(&self, durable: &str) -> Result<(), BrokerError> {
        // A durable consumer's position cannot be moved back: it is deleted and recreated
        // (DeliverPolicy::All) when the subscription reopens it.
        match self.stream_handle().await?.delete_consumer(durable).await {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(error.kind(), jetstream::stream::ConsumerErrorKind::JetStream(e)
                    if [jetstream::ErrorCode::CONSUMER_NOT_FOUND, jetstream::ErrorCode::STREAM_NOT_FOUND]
                        .contains(&e.error_code())) =>
            {
                Ok(())
            }
            Err(error) => Err(BrokerError::Nats(format!("consumer {durable}: {error}"))),
        }
    }

    async fn lag(&self, durable: &str) -> Result<Option<u64>, BrokerError> {
        use jetstream::context::ConsumerInfoErrorKind::{NotFound, StreamNotFound};
        match self.stream_handle().await?.consumer_info(durable).await {
            Ok(info) => Ok(Some(info.num_pending + info.num_ack_pending as u64)),
            Err(error) if matches!(error.kind(), NotFound | StreamNotFound) => Ok(None),
            Err(error) => Err(BrokerError::Nats(format!("consumer {durable}: {error}"))),
        }
    }
}

/// The servers of `url`: one URL, or a cluster's joined by commas (`nats://a:4222,nats://b:4222`).
fn servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, BrokerError> {
    url.split(',')
        .map(str::trim)
        .filter(|one| !one.is_empty())
        .map(|one| {
            one.parse()
                .map_err(|e| BrokerError::Nats(format!("NATS_URL {one:?}: {e}")))
        })
        .collect()
}

/// Awaits acks already requested; how many leading ones succeeded.
async fn settle(acks: Vec<jetstream::context::PublishAckFuture>) -> usize {
    let mut stored = 0;
    for ack in acks {
        if ack.await.is_err() {
            break;
        }
        stored += 1;
    }
    stored
}
