//! The depot domain: pure, synchronous, no I/O.

pub(crate) mod list;
