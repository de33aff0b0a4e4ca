//! Who may act on baskets (ADR 18): a customer on its own, the mall's operators on any.

use host::{
    ApiError,
    auth::{Caller, Owners, Role},
};

use crate::{app::App, domain::basket};

/// Starting a basket for customer `customer_id`.
pub(crate) fn start(caller: &Caller, customer_id: &str) -> Result<(), ApiError> {
    caller.require(caller.is_customer(customer_id))
}

/// The routes of one basket belong to its customer.
#[derive(Clone)]
pub(crate) struct Baskets(pub(crate) App);

impl Owners for Baskets {
    const ROLE: Role = Role::Customer;

    async fn owner(&self, id: &str) -> Result<String, ApiError> {
        Ok(self.0.basket(id).await?.customer_id().to_owned())
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(basket::Error::NotFound.to_string())
    }
}
