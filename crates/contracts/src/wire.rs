//! Message payloads as Pact sees them: the protobuf payload in protobuf's canonical JSON
//! mapping (lowerCamelCase names, 64-bit integers as strings), with every field present, so a
//! renamed or removed field is a missing key, not a silent default.

use std::sync::LazyLock;

use anyhow::{Context as _, anyhow};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::Value;

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("proto's descriptors decode")
});

/// The payload type of the message called `name` in the catalog; `None` for the empty
/// `am.Success`/`am.Failure` replies.
fn descriptor(name: &str) -> anyhow::Result<Option<MessageDescriptor>> {
    let spec = proto::spec(name).ok_or_else(|| anyhow!("{name} is not in the message catalog"))?;
    spec.payload
        .map(|full_name| {
            POOL.get_message_by_name(full_name)
                .ok_or_else(|| anyhow!("no descriptor for {full_name}"))
        })
        .transpose()
}

/// The JSON of a payload of the message called `name`.
///
/// # Errors
/// When `name` is unknown or the bytes are not its payload.
pub fn to_json(name: &str, payload: &[u8]) -> anyhow::Result<Value> {
    let Some(descriptor) = descriptor(name)? else {
        return Ok(Value::Object(serde_json::Map::new()));
    };
    let message =
        DynamicMessage::decode(descriptor, payload).with_context(|| format!("{name} payload"))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    Ok(message.serialize_with_options(serde_json::value::Serializer, &options)?)
}

/// The payload bytes of the message called `name` written as `json`; a field the protobuf
/// type does not have is an error, which is how a consumer's stale expectation shows.
///
/// # Errors
/// When `name` is unknown or `json` does not fit its payload type.
pub fn from_json(name: &str, json: &Value) -> anyhow::Result<Vec<u8>> {
    let Some(descriptor) = descriptor(name)? else {
        return Ok(Vec::new());
    };
    let message = DynamicMessage::deserialize(descriptor, json.clone())
        .with_context(|| format!("{json} as the payload of {name}"))?;
    Ok(message.encode_to_vec())
}
