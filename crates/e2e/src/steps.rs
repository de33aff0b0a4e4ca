//! The steps of the features, by the module they exercise.

mod baskets;
mod customers;
mod orders;
mod stores;
