//! The stores domain: pure, synchronous, no I/O.

pub(crate) mod names;
pub(crate) mod product;
pub(crate) mod store;
