//! Consumer-driven contracts between MallBots' modules and their clients, with Pact.
//!
//! - REST: the kiosk's [`clients::BasketsClient`] and the store owner's
//!   [`clients::StoresClient`] record what they need of `/api/baskets` and `/api/stores`
//!   (`tests/rest_consumers.rs`); the running baskets and stores modules are verified against
//!   those pacts (`tests/rest_providers.rs`).
//! - Messages: each consuming module records the events and replies it handles
//!   (`tests/message_consumers.rs`, where the examples are fed to the real module); the real
//!   producers are made to publish each message and verified against them
//!   (`tests/message_providers.rs`).
//!
//! Payloads are protobuf on the wire; pacts carry them as protobuf's JSON mapping ([`wire`]).
//! The pact files are committed under `pacts/` ([`pacts`]).

pub mod clients;
pub mod pacts;
pub mod wire;
