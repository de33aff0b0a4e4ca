//! The payments domain: pure, synchronous, no I/O.

pub(crate) mod invoice;
pub(crate) mod payment;
