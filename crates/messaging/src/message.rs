//! Messages as modules build and receive them.

use chrono::{DateTime, Utc};

use crate::envelope::{Envelope, Metadata};

/// Metadata key naming the aggregate a message is about: consumers keep messages with the same
/// key in order. An addition to the book's keys; Go consumers ignore it.
pub const AGGREGATE_ID_KEY: &str = "aggregate-id";

/// A message to send: staged in a module's outbox, published by its relay.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Where it goes, e.g. `mallbots.stores.events.Store`.
    pub subject: String,
    /// The envelope (its `sent_at` is the staging time).
    pub envelope: Envelope,
}

impl Message {
    /// A message named `name` carrying `payload`, with a fresh id.
    pub fn new(
        subject: impl Into<String>,
        name: impl Into<String>,
        payload: &impl prost::Message,
    ) -> Message {
        Message::from_bytes(subject, name, payload.encode_to_vec())
    }

    /// `payload` under its catalog name, on its catalog subject, with a fresh id.
    pub fn of<M: proto::Payload>(payload: &M) -> Message {
        Message::new(M::SUBJECT, payload.name(), payload)
    }

    /// A message whose payload is already encoded.
    pub fn from_bytes(
        subject: impl Into<String>,
        name: impl Into<String>,
        payload: Vec<u8>,
    ) -> Message {
        let now = Utc::now();
        Message {
            subject: subject.into(),
            envelope: Envelope {
                id: uuid::Uuid::new_v4().to_string(),
                name: name.into(),
                payload,
                occurred_at: now,
                metadata: Metadata::new(),
                sent_at: now,
            },
        }
    }

    /// Marks the message as about aggregate `id`, so consumers keep its order among that
    /// aggregate's messages.
    #[must_use]
    pub fn about(self, id: impl Into<String>) -> Message {
        self.with_metadata(AGGREGATE_ID_KEY, id)
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Message {
        self.envelope.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets when the fact happened (default: now).
    #[must_use]
    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Message {
        self.envelope.occurred_at = at;
        self
    }

    /// The message id.
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The message name.
    pub fn name(&self) -> &str {
        &self.envelope.name
    }
}

/// A message delivered to a handler.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The subject it arrived on.
    pub subject: String,
    /// The decoded envelope.
    pub envelope: Envelope,
    /// Which delivery of this message this is (1 = first).
    pub attempt: u32,
}

impl Incoming {
    /// The message id.
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The message name (registry key).
    pub fn name(&self) -> &str {
        &self.envelope.name
    }

    /// A metadata value.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.envelope.metadata.get(key).map(String::as_str)
    }

    /// The aggregate the message is about, when the producer said.
    pub fn key(&self) -> Option<&str> {
        self.metadata(AGGREGATE_ID_KEY)
    }

    /// Decodes the payload as `M`.
    ///
    /// # Errors
    /// A [`crate::HandlerError::Permanent`]: a payload that does not decode never will.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, crate::HandlerError> {
        M::decode(self.envelope.payload.as_slice()).map_err(|e| {
            crate::HandlerError::Permanent(anyhow::anyhow!(
                "payload of {} {} is not valid: {e}",
                self.name(),
                self.id()
            ))
        })
    }
}
