//! Who may act on payments (ADR 18): a customer authorizes its own payments and reads and pays
//! its own invoices; the mall's operators act on any.

use host::{
    ApiError,
    auth::{Caller, Owners, Role},
};

use crate::{app::App, domain::invoice};

/// Authorizing a payment for customer `customer_id`.
pub(crate) fn authorize(caller: &Caller, customer_id: &str) -> Result<(), ApiError> {
    caller.require(caller.is_customer(customer_id))
}

/// The routes of one invoice belong to the customer it bills.
#[derive(Clone)]
pub(crate) struct Invoices(pub(crate) App);

impl Owners for Invoices {
    const ROLE: Role = Role::Customer;

    async fn owner(&self, id: &str) -> Result<String, ApiError> {
        Ok(self.0.invoice(id).await?.customer_id)
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(invoice::Error::NotFound.to_string())
    }
}
