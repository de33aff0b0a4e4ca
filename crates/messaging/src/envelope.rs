//! The wire format, byte-compatible with the book's Go services.
//!
//! A NATS message body is a `jetstream.StreamMessage { id, name, data, metadata, sent_at }`;
//! `data` is an `EventMessageData`/`CommandMessageData`/`ReplyMessageData`
//! `{ payload, occurred_at }` (the three share one layout); `payload` is the module message
//! named by `name`. Metadata travels as a `google.protobuf.Struct` of string values, keys
//! encoded in sorted order (Go's deterministic order), the only header being `Nats-Msg-Id`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone as _, Utc};
use prost::Message as _;
use proto::envelope::{EventMessageData, StreamMessage};

/// Message metadata: `traceparent`, `COMMAND_*`, `REPLY_*`, … (string values on the wire).
pub type Metadata = BTreeMap<String, String>;

/// One message as it crosses the broker, decoded from both envelope layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The message id (UUID): the `Nats-Msg-Id` header and every consumer's inbox key.
    pub id: String,
    /// The registry key, e.g. `storesapi.StoreCreated`; names the payload's type.
    pub name: String,
    /// The protobuf bytes of the module message.
    pub payload: Vec<u8>,
    /// When the fact happened (or the command/reply was made).
    pub occurred_at: DateTime<Utc>,
    /// Context: trace, saga correlation, reply routing.
    pub metadata: Metadata,
    /// When the sender published it.
    pub sent_at: DateTime<Utc>,
}

/// A body that is not a MallBots message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The outer `StreamMessage` does not parse.
    #[error("not a StreamMessage: {0}")]
    Stream(String),
    /// The inner `*MessageData` does not parse.
    #[error("message {id} ({name}): data is not a MessageData: {reason}")]
    Data {
        /// The message id.
        id: String,
        /// The message name.
        name: String,
        /// The decoder's error.
        reason: String,
    },
    /// A field every message must have is empty.
    #[error("message without {0}")]
    Missing(&'static str),
    /// A timestamp outside the representable range.
    #[error("message {0}: timestamp out of range")]
    Timestamp(String),
}

impl Envelope {
    /// Encodes the body of a NATS message.
    pub fn encode(&self) -> Vec<u8> {
        // Event-, Command- and ReplyMessageData are field-for-field identical.
        let data = EventMessageData {
            payload: self.payload.clone(),
            occurred_at: Some(timestamp(self.occurred_at)),
        };
        let fields = self
            .metadata
            .iter()
            .map(|(key, value)| {
                let value = prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue(value.clone())),
                };
                (key.clone(), value)
            })
            .collect();
        StreamMessage {
            id: self.id.clone(),
            name: self.name.clone(),
            data: data.encode_to_vec(),
            metadata: Some(prost_types::Struct { fields }),
            sent_at: Some(timestamp(self.sent_at)),
        }
        .encode_to_vec()
    }

    /// Decodes the body of a NATS message.
    ///
    /// # Errors
    /// [`DecodeError`] for anything that is not a well-formed MallBots message; never panics.
    pub fn decode(body: &[u8]) -> Result<Envelope, DecodeError> {
        let stream = StreamMessage::decode(body).map_err(|e| DecodeError::Stream(e.to_string()))?;
        if stream.id.is_empty() {
            return Err(DecodeError::Missing("an id"));
        }
        if stream.name.is_empty() {
            return Err(DecodeError::Missing("a name"));
        }
        let data =
            EventMessageData::decode(stream.data.as_slice()).map_err(|e| DecodeError::Data {
                id: stream.id.clone(),
                name: stream.name.clone(),
                reason: e.to_string(),
            })?;
        let metadata = stream
            .metadata
            .map(|s| {
                s.fields
                    .into_iter()
                    .map(|(key, value)| (key, metadata_string(value)))
                    .collect()
            })
            .unwrap_or_default();
        let instant = |t: Option<prost_types::Timestamp>| {
            from_timestamp(t.unwrap_or_default())
                .ok_or_else(|| DecodeError::Timestamp(stream.id.clone()))
        };
        Ok(Envelope {
            occurred_at: instant(data.occurred_at)?,
            sent_at: instant(stream.sent_at)?,
            id: stream.id,
            name: stream.name,
            payload: data.payload,
            metadata,
        })
    }
}

/// Go reads every metadata value as a string; anything else a foreign producer sent is kept
/// as its JSON text rather than dropped.
fn metadata_string(value: prost_types::Value) -> String {
    use prost_types::value::Kind;
    match value.kind {
        Some(Kind::StringValue(s)) => s,
        Some(Kind::BoolValue(b)) => b.to_string(),
        Some(Kind::NumberValue(n)) => n.to_string(),
        Some(Kind::NullValue(_)) | None => String::new(),
        Some(Kind::StructValue(_) | Kind::ListValue(_)) => "<structured>".to_owned(),
    }
}

/// A `google.protobuf.Timestamp` for `instant`.
pub fn timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The instant of a `google.protobuf.Timestamp`, if valid.
pub fn from_timestamp(t: prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(t.nanos).ok()?;
    Utc.timestamp_opt(t.seconds, nanos).single()
}
