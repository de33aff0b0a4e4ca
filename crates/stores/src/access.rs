//! Who may act on stores (ADR 18): anyone signed in browses the mall; a store owner opens
//! stores and manages the ones it opened and their products; the mall's operators manage any.

use host::{
    ApiError,
    auth::{Caller, Owners, Role},
};

use crate::{
    app::{App, Error},
    domain::{product, store},
};

/// Opening a store.
pub(crate) fn may_open_store(caller: &Caller) -> bool {
    caller.may_act_as(Role::StoreOwner)
}

/// The routes changing one store belong to its owner.
#[derive(Clone)]
pub(crate) struct Stores(pub(crate) App);

impl Owners for Stores {
    const ROLE: Role = Role::StoreOwner;

    async fn owner(&self, id: &str) -> Result<String, ApiError> {
        Ok(self.0.owner_of_store(id).await?)
    }

    fn not_found(&self) -> ApiError {
        Error::Store(store::Error::NotFound).into()
    }
}

/// The routes changing one product belong to its store's owner.
#[derive(Clone)]
pub(crate) struct Products(pub(crate) App);

impl Owners for Products {
    const ROLE: Role = Role::StoreOwner;

    async fn owner(&self, id: &str) -> Result<String, ApiError> {
        let product = self.0.product(id).await?;
        Ok(self.0.owner_of_store(&product.store_id).await?)
    }

    fn not_found(&self) -> ApiError {
        Error::Product(product::Error::NotFound).into()
    }
}
