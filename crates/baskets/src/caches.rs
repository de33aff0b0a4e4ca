//! Baskets' copies of the stores and products it sells from (`copies`): its tables.

/// Migration step of the caches (see `crate::MIGRATIONS`).
pub(crate) const TABLES: &str = "
    CREATE TABLE baskets.stores_cache (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE baskets.products_cache (
        id TEXT PRIMARY KEY,
        store_id TEXT NOT NULL,
        name TEXT NOT NULL,
        price DOUBLE PRECISION NOT NULL
    );";

/// Migration step: stores copied with their location, as every module's copies are.
pub(crate) const LOCATION: &str =
    "ALTER TABLE baskets.stores_cache ADD COLUMN location TEXT NOT NULL DEFAULT ''";

/// The consumers feeding the copies (`mallbots replay caches` rewinds them).
pub(crate) const STORES_CONSUMER: &str = "baskets-stores";
pub(crate) const PRODUCTS_CONSUMER: &str = "baskets-products";
