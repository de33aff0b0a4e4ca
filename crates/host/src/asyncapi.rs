//! `/asyncapi.json`: the messages of the system as an AsyncAPI 3.0 document, generated from
//! `proto`'s catalog (what each module sends) and the subscriptions this process mounted (what
//! each module receives), with payload schemas derived from the protobuf descriptors in their
//! JSON mapping (lowerCamelCase names, 64-bit integers as strings).

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use prost_types::{
    DescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use serde_json::{Map, Value, json};

/// What one module receives: a durable consumer of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// The module.
    pub module: &'static str,
    /// Its durable consumer.
    pub consumer: String,
    /// The subject.
    pub subject: String,
    /// The names it handles; empty: every message of the subject.
    pub names: Vec<String>,
}

/// Message types by full name (`storespb.StoreCreated`), nested ones included.
fn descriptors() -> BTreeMap<String, DescriptorProto> {
    let set = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap_or_default();
    let mut all = BTreeMap::new();
    fn add(prefix: &str, message: &DescriptorProto, all: &mut BTreeMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            add(&name, nested, all);
        }
        all.insert(name, message.clone());
    }
    for file in &set.file {
        for message in &file.message_type {
            add(file.package(), message, &mut all);
        }
    }
    all
}

/// The JSON schema of `full_name`, adding the message types it uses to `schemas`.
fn schema(
    full_name: &str,
    types: &BTreeMap<String, DescriptorProto>,
    schemas: &mut Map<String, Value>,
) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{full_name}")});
    if schemas.contains_key(full_name) {
        return reference;
    }
    let Some(message) = types.get(full_name) else {
        return json!({"type": "object"});
    };
    // Reserve the name first: a message may refer to itself.
    schemas.insert(full_name.to_owned(), Value::Null);
    let mut properties = Map::new();
    for field in &message.field {
        let one = match field.r#type() {
            Type::String | Type::Bytes => json!({"type": "string"}),
            Type::Double | Type::Float => json!({"type": "number"}),
            Type::Int32 | Type::Uint32 | Type::Sint32 | Type::Fixed32 | Type::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Type::Int64 | Type::Uint64 | Type::Sint64 | Type::Fixed64 | Type::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Type::Bool => json!({"type": "boolean"}),
            Type::Enum => json!({"type": "string"}),
            Type::Message | Type::Group => {
                let nested = field.type_name().trim_start_matches('.');
                match nested {
                    "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
                    _ => schema(nested, types, schemas),
                }
            }
        };
        let property = if field.label() == Label::Repeated {
            json!({"type": "array", "items": one})
        } else {
            one
        };
        properties.insert(field.json_name().to_owned(), property);
    }
    schemas.insert(
        full_name.to_owned(),
        json!({"type": "object", "properties": properties}),
    );
    reference
}

/// The document for a process whose modules receive what `receivers` say.
pub fn document(receivers: &[Receiver]) -> Value {
    let types = descriptors();
    let mut schemas = Map::new();
    let mut messages = Map::new();
    let mut channels: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut operations = Map::new();
    for spec in proto::CATALOG {
        let kind = match spec.kind {
            proto::Kind::Event => "event",
            proto::Kind::Command => "command",
            proto::Kind::Reply => "reply",
        };
        let payload = spec.payload.map_or_else(
            || json!({"type": "object", "description": "empty"}),
            |full_name| schema(full_name, &types, &mut schemas),
        );
        messages.insert(
            spec.name.to_owned(),
            json!({
                "name": spec.name,
                "contentType": "application/x-protobuf",
                "summary": format!("{kind} sent by {}", spec.producer),
                "payload": payload,
                "x-protobuf-type": spec.payload,
                "x-kind": kind,
                "x-producer": spec.producer,
            }),
        );
        channels.entry(spec.subject).or_default().insert(spec.name);
        let channel = json!({"$ref": format!("#/channels/{}", spec.subject)});
        operations.insert(
            format!("{}.send.{}", spec.producer.replace(' ', "-"), spec.name),
            json!({
                "action": "send",
                "channel": channel,
                "messages": [{"$ref": format!("#/channels/{}/messages/{}", spec.subject, spec.name)}],
                "x-module": spec.producer,
            }),
        );
    }
    // A wildcard subscription (`mallbots.>`) reads a channel of its own: every message of the
    // subjects under it.
    for receiver in receivers {
        if let Some(prefix) = receiver.subject.strip_suffix('>') {
            let covered: BTreeSet<&str> = proto::CATALOG
                .iter()
                .filter(|spec| spec.subject.starts_with(prefix))
                .map(|spec| spec.name)
                .collect();
            channels.insert(receiver.subject.as_str(), covered);
        }
    }
    for receiver in receivers {
        let names: Vec<&str> = if receiver.names.is_empty() {
            channels
                .get(receiver.subject.as_str())
                .map(|names| names.iter().copied().collect())
                .unwrap_or_default()
        } else {
            receiver.names.iter().map(String::as_str).collect()
        };
        let refs: Vec<Value> = names
            .iter()
            .map(|name| json!({"$ref": format!("#/channels/{}/messages/{name}", receiver.subject)}))
            .collect();
        operations.insert(
            format!("{}.receive.{}", receiver.module, receiver.consumer),
            json!({
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{}", receiver.subject)},
                "messages": refs,
                "x-module": receiver.module,
                "x-durable-consumer": receiver.consumer,
            }),
        );
    }
    let channels: Map<String, Value> = channels
        .into_iter()
        .map(|(subject, names)| {
            let messages: Map<String, Value> = names
                .into_iter()
                .map(|name| {
                    (
                        name.to_owned(),
                        json!({"$ref": format!("#/components/messages/{name}")}),
                    )
                })
                .collect();
            (
                subject.to_owned(),
                json!({"address": subject, "messages": messages}),
            )
        })
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "MallBots messages",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every message that crosses the broker: NATS JetStream subjects (stream `mallbots`), \
                each body a `jetstream.StreamMessage` envelope around the protobuf payload described here.",
        },
        "defaultContentType": "application/x-protobuf",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    })
}
