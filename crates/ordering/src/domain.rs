//! The ordering domain: pure, synchronous, no I/O.

pub(crate) mod order;
