//! Orchestrated sagas, fixing the book's (reference-infra.md W32–W37): a [`Saga`] is a list of
//! [`Step`]s built from plain functions; its state machine is pure ([`Saga::begin`],
//! [`Saga::reply`], [`Saga::timeout`]) and tested with [`testing`]; the [`Orchestrator`]
//! persists each instance, applies replies under a row lock in one transaction with the next
//! command, compensates steps that time out, and retries failing compensations before parking
//! the instance as `compensation_failed` where an operator sees it.

mod definition;
mod orchestrator;
pub mod testing;
#[cfg(test)]
mod tests;

pub use definition::{Command, Ignored, Instance, Next, OnReply, Reply, Saga, Status, Step};
pub use orchestrator::{
    Entry, MIGRATIONS, Orchestrator, Record, SAGA_ID_HDR, SAGA_NAME_HDR, SAGA_STEP_HDR, SagaError,
    Timing, saga_of,
};
