//! Who may act on customers (ADR 18): a customer on its own record (its token's subject is its
//! id), the mall's operators on any; enabling and disabling are the operators'.

use host::{
    ApiError,
    auth::{Caller, Role},
};

use crate::domain::customer;

/// The id a registration gets: a customer registers itself under its own subject; the mall's
/// operators register anyone under a new id.
pub(crate) fn registration(caller: &Caller) -> Result<Option<String>, ApiError> {
    match caller.role {
        Role::Customer => Ok(Some(caller.subject.clone())),
        _ if caller.is_trusted() => Ok(None),
        _ => Err(caller.refusal()),
    }
}

/// Reading or changing customer `id`'s own details.
pub(crate) fn own(caller: &Caller, id: &str) -> Result<(), ApiError> {
    caller.owns(id, || {
        ApiError::not_found(customer::Error::NotFound.to_string())
    })
}

/// Enabling or disabling a customer.
pub(crate) fn operate(caller: &Caller) -> Result<(), ApiError> {
    caller.require(caller.is_trusted())
}
