//! Who may search (ADR 18): searching across customers is the admin's (and the mall's own);
//! a customer searches and reads its own orders only.

use db::Db;
use host::{
    ApiError,
    auth::{Caller, Owners, Role},
};

/// The customer a search is held to: a customer's own, whatever it asked for being its own or
/// nothing; the trusted search as asked.
pub(crate) fn search(caller: &Caller, asked: String) -> Result<String, ApiError> {
    if caller.is_trusted() {
        return Ok(asked);
    }
    caller
        .require(caller.role == Role::Customer && (asked.is_empty() || asked == caller.subject))?;
    Ok(caller.subject.clone())
}

/// The routes of one order belong to its customer.
#[derive(Clone)]
pub(crate) struct Orders(pub(crate) Db);

pub(crate) const NOT_FOUND: &str = "order with that ID does not exist";

impl Owners for Orders {
    const ROLE: Role = Role::Customer;

    async fn owner(&self, id: &str) -> Result<String, ApiError> {
        match crate::queries::find(&self.0, id).await? {
            Some(order) => Ok(order.customer_id),
            None => Err(self.not_found()),
        }
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(NOT_FOUND)
    }
}
