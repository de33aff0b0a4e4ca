//! Who may act on orders (ADR 18): a customer reads and cancels its own; creating an order
//! directly (its prices are the caller's word) is the mall's own business — customers order
//! by checking out a basket.

use host::{
    ApiError,
    auth::{Owners, Role},
};

use crate::{app::App, domain::order};

/// The routes of one order belong to its customer.
#[derive(Clone)]
pub(crate) struct Orders(pub(crate) App);

impl Owners for Orders {
    const ROLE: Role = Role::Customer;

    async fn owner(&self, id: &str) -> Result<String, ApiError> {
        Ok(self.0.order(id).await?.customer_id)
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(order::Error::NotFound.to_string())
    }
}
