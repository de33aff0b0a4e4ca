//! The envelope against vectors made by Google's protobuf runtimes (see `golden/README.md`):
//! every vector decodes to the recorded values and re-encodes to the same bytes, and every
//! payload, decoded with our `.proto` files, reads as Google's runtime wrote it.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use chrono::{DateTime, Utc};
use messaging::{Envelope, Metadata};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = include_str!("golden/wire-vectors.json");
    serde_json::from_str(text).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn instant(decoded: &Value, field: &str) -> DateTime<Utc> {
    let seconds = decoded[format!("{field}_seconds")].as_i64().unwrap();
    let nanos = decoded[format!("{field}_nanos")].as_u64().unwrap();
    DateTime::from_timestamp(seconds, u32::try_from(nanos).unwrap()).unwrap()
}

#[test]
fn every_vector_decodes_to_its_recorded_values() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 17);
    for vector in vectors {
        let case = vector["case"].as_str().unwrap();
        let decoded = &vector["decoded"];
        let envelope =
            Envelope::decode(&hex(vector["stream_message_hex"].as_str().unwrap())).unwrap();

        assert_eq!(envelope.id, decoded["id"].as_str().unwrap(), "{case}");
        assert_eq!(
            vector["nats_headers"]["Nats-Msg-Id"], decoded["id"],
            "{case}"
        );
        assert_eq!(envelope.name, decoded["name"].as_str().unwrap(), "{case}");
        let metadata: Metadata = serde_json::from_value(decoded["metadata"].clone()).unwrap();
        assert_eq!(envelope.metadata, metadata, "{case}");
        assert_eq!(envelope.sent_at, instant(decoded, "sent_at"), "{case}");
        assert_eq!(
            envelope.occurred_at,
            instant(decoded, "occurred_at"),
            "{case}"
        );
        assert_eq!(
            envelope.payload,
            hex(decoded["payload_hex"].as_str().unwrap()),
            "{case}"
        );

        // The name is allowed on the subject, per our catalog.
        let spec = proto::spec(&envelope.name)
            .unwrap_or_else(|| panic!("{case}: {} not in the catalog", envelope.name));
        assert_eq!(spec.subject, vector["subject"].as_str().unwrap(), "{case}");
        assert_eq!(spec.payload, decoded["payload_type"].as_str(), "{case}");
    }
}

#[test]
fn every_vector_re_encodes_to_the_same_bytes() {
    for vector in vectors() {
        let case = vector["case"].as_str().unwrap();
        let bytes = hex(vector["stream_message_hex"].as_str().unwrap());
        let envelope = Envelope::decode(&bytes).unwrap();
        // Metadata is encoded in sorted key order, Go's deterministic order: identical bytes.
        assert_eq!(envelope.encode(), bytes, "{case}");

        // The inner data layer alone, too.
        let data = proto::envelope::StreamMessage::decode(bytes.as_slice())
            .unwrap()
            .data;
        assert_eq!(
            data,
            hex(vector["decoded"]["data_hex"].as_str().unwrap()),
            "{case}"
        );
    }
}

#[test]
fn every_payload_reads_as_googles_runtime_wrote_it() {
    let pool = DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    for vector in vectors() {
        let case = vector["case"].as_str().unwrap();
        let decoded = &vector["decoded"];
        let Some(payload_type) = decoded["payload_type"].as_str() else {
            assert!(
                decoded["payload_hex"].as_str().unwrap().is_empty(),
                "{case}"
            );
            continue;
        };
        let descriptor = pool
            .get_message_by_name(payload_type)
            .unwrap_or_else(|| panic!("{case}: {payload_type} unknown"));
        let message = DynamicMessage::decode(
            descriptor,
            hex(decoded["payload_hex"].as_str().unwrap()).as_slice(),
        )
        .unwrap();
        let json = message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .unwrap();
        assert_eq!(
            json, decoded["payload"],
            "{case}: our {payload_type} reads the payload differently"
        );
        // And encoding it again gives Google's bytes.
        assert_eq!(
            message.encode_to_vec(),
            hex(decoded["payload_hex"].as_str().unwrap()),
            "{case}"
        );
    }
}

#[test]
fn typed_payloads_decode_by_name() {
    for vector in vectors() {
        let decoded = &vector["decoded"];
        let payload = hex(decoded["payload_hex"].as_str().unwrap());
        match decoded["name"].as_str().unwrap() {
            "storesapi.StoreCreated" => {
                let event = proto::stores::StoreCreated::decode(payload.as_slice()).unwrap();
                assert_eq!(event.name, decoded["payload"]["name"].as_str().unwrap());
            }
            "depotapi.CreatedShoppingListReply" => {
                let reply = proto::depot::CreatedShoppingList::decode(payload.as_slice()).unwrap();
                assert_eq!(reply.id, decoded["payload"]["id"].as_str().unwrap());
            }
            "ordersapi.OrderCreated" => {
                let event = proto::ordering::OrderCreated::decode(payload.as_slice()).unwrap();
                assert_eq!(event.shopping_id, "");
                assert_eq!(
                    event.items.len(),
                    decoded["payload"]["items"].as_array().unwrap().len()
                );
            }
            _ => {}
        }
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d61_6c6c);
    for _ in 0..10_000 {
        let len = rng.random_range(0..256);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let _ = Envelope::decode(&bytes);
    }
    // Valid messages with a flipped byte or cut short: errors or other values, never a panic.
    for vector in vectors() {
        let bytes = hex(vector["stream_message_hex"].as_str().unwrap());
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1 << rng.random_range(0..8);
            let _ = Envelope::decode(&flipped);
            let _ = Envelope::decode(&bytes[..i]);
        }
    }
}

#[test]
fn an_empty_body_is_an_error() {
    assert!(Envelope::decode(&[]).is_err());
}
