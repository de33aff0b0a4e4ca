//! The depot's copies of stores (with locations, for the bots) and products (`copies`), in the
//! depot's own words when one cannot be found.

/// Migration step: products copied with their price, as every module's copies are.
pub(crate) const PRICE: &str =
    "ALTER TABLE depot.products_cache ADD COLUMN price DOUBLE PRECISION NOT NULL DEFAULT 0";

/// The consumers feeding the copies (`mallbots replay caches` rewinds them).
pub(crate) const STORES_CONSUMER: &str = "depot-stores";
pub(crate) const PRODUCTS_CONSUMER: &str = "depot-products";

/// Why a lookup failed; the messages are the book's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Missing {
    #[error("building shopping list: product fallback failed")]
    Product,
    #[error("building shopping list: store fallback failed")]
    Store,
    #[error("building shopping list: stores unavailable: {0}")]
    Unavailable(tonic::Status),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<copies::Missing> for Missing {
    fn from(missing: copies::Missing) -> Missing {
        match missing {
            copies::Missing::NotFound(copies::Copied::Store) => Missing::Store,
            copies::Missing::NotFound(copies::Copied::Product) => Missing::Product,
            copies::Missing::Unavailable { status, .. } => Missing::Unavailable(status),
            copies::Missing::Database(cause) => Missing::Database(cause),
        }
    }
}
