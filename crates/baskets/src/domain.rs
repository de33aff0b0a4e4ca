//! The baskets domain: pure, synchronous, no I/O.

pub(crate) mod basket;
