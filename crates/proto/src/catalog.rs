//! Every message that crosses the broker: its name, subject, kind and protobuf type.
//!
//! Generated from `proto/catalog.txt`, the one table other code derives from: the payloads'
//! [`Payload`] implementations (typed routes and sending), decoding by name, the AsyncAPI
//! document, the console, tests that a module only sends what is declared.

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fact, published by the module that owns the aggregate.
    Event,
    /// A request to one module, sent by the saga, answered by a reply.
    Command,
    /// The answer to a command, sent to the command's reply channel.
    Reply,
}

/// One message of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSpec {
    /// The registry key carried in `StreamMessage.name`, e.g. `storesapi.StoreCreated`.
    pub name: &'static str,
    /// The subject it is published on. Replies list the create-order saga's reply channel.
    pub subject: &'static str,
    /// The payload's protobuf full name; `None` for the empty `am.Success`/`am.Failure` replies.
    pub payload: Option<&'static str>,
    /// Event, command or reply.
    pub kind: Kind,
    /// The module that sends it.
    pub producer: &'static str,
}

/// A payload that crosses the broker: its names, subject and kind, from `proto/catalog.txt`
/// (implemented by `build.rs`), so that code sending or handling it never spells them.
pub trait Payload: prost::Message + Default + Send + Sync + 'static {
    /// The names it is sent under: one, except a payload the book sends under names that say
    /// which way it changed (`storespb.ProductPriceChanged`).
    const NAMES: &'static [&'static str];
    /// The subject it is published on.
    const SUBJECT: &'static str;
    /// Event, command or reply.
    const KIND: Kind;
    /// The name this value is sent under.
    fn name(&self) -> &'static str;
}

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// The catalog entry for a message name, if the name is known.
pub fn spec(name: &str) -> Option<&'static MessageSpec> {
    CATALOG.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once() {
        let mut names: Vec<_> = CATALOG.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn every_payload_type_is_in_the_compiled_descriptors() {
        let fds =
            <prost_types::FileDescriptorSet as prost::Message>::decode(crate::FILE_DESCRIPTOR_SET)
                .expect("descriptor set decodes");
        let known: Vec<String> = fds
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.message_type
                    .iter()
                    .map(move |m| format!("{package}.{}", m.name()))
            })
            .collect();
        for spec in CATALOG {
            if let Some(payload) = spec.payload {
                assert!(
                    known.iter().any(|k| k == payload),
                    "{payload} of {} is not compiled",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn each_payload_lists_the_names_and_subject_of_its_lines() {
        for (names, subject) in payloads() {
            let lines: Vec<&str> = CATALOG
                .iter()
                .filter(|spec| names.contains(&spec.name))
                .inspect(|spec| assert_eq!(spec.subject, subject, "{}", spec.name))
                .map(|spec| spec.name)
                .collect();
            assert_eq!(lines, names);
        }
    }

    #[test]
    fn a_price_change_is_named_by_its_direction() {
        use crate::stores::{self, ProductPriceChanged};
        let up = ProductPriceChanged {
            id: "p".into(),
            delta: 1.5,
        };
        let down = ProductPriceChanged {
            id: "p".into(),
            delta: -1.5,
        };
        assert_eq!(up.name(), stores::PRODUCT_PRICE_INCREASED_EVENT);
        assert_eq!(down.name(), stores::PRODUCT_PRICE_DECREASED_EVENT);
    }

    #[test]
    fn subjects_live_in_the_stream() {
        for spec in CATALOG {
            assert!(spec.subject.starts_with("mallbots."), "{}", spec.subject);
        }
    }
}
