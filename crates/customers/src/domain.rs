//! The customers domain: pure, synchronous, no I/O.

pub(crate) mod customer;
