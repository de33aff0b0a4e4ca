//! The copies' statements in one schema, formatted once: a lookup runs for every item of every
//! checkout, shopping list and projected order.

use std::sync::Arc;

/// A statement ready to bind.
pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

pub(crate) struct Sql {
    pub(crate) store: Arc<str>,
    pub(crate) copy_store: Arc<str>,
    pub(crate) product: Arc<str>,
    pub(crate) copy_product: Arc<str>,
    pub(crate) store_created: Arc<str>,
    pub(crate) store_rebranded: Arc<str>,
    pub(crate) product_added: Arc<str>,
    pub(crate) product_rebranded: Arc<str>,
    pub(crate) price_changed: Arc<str>,
    pub(crate) product_removed: Arc<str>,
    pub(crate) clear_stores: Arc<str>,
    pub(crate) clear_products: Arc<str>,
}

impl Sql {
    pub(crate) fn new(schema: &str) -> Sql {
        let sql = |text: &str| Arc::from(text.replace("{schema}", schema));
        Sql {
            store: sql("SELECT name, location FROM {schema}.stores_cache WHERE id = $1"),
            copy_store: sql("INSERT INTO {schema}.stores_cache (id, name, location) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO NOTHING"),
            product: sql("SELECT store_id, name, price FROM {schema}.products_cache WHERE id = $1"),
            copy_product: sql("INSERT INTO {schema}.products_cache (id, store_id, name, price)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING"),
            store_created: sql("INSERT INTO {schema}.stores_cache (id, name, location) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, location = excluded.location"),
            store_rebranded: sql("UPDATE {schema}.stores_cache SET name = $2 WHERE id = $1"),
            product_added: sql("INSERT INTO {schema}.products_cache (id, store_id, name, price)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id,
                 name = excluded.name, price = excluded.price"),
            product_rebranded: sql("UPDATE {schema}.products_cache SET name = $2 WHERE id = $1"),
            price_changed: sql("UPDATE {schema}.products_cache SET price = price + $2 WHERE id = $1"),
            product_removed: sql("DELETE FROM {schema}.products_cache WHERE id = $1"),
            clear_stores: sql("DELETE FROM {schema}.stores_cache"),
            clear_products: sql("DELETE FROM {schema}.products_cache"),
        }
    }
}

/// `sql`, to bind.
pub(crate) fn query<'q>(sql: &Arc<str>) -> Query<'q> {
    sqlx::query(db::AssertSqlSafe(Arc::clone(sql)))
}
