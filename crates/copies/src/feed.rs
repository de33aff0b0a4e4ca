//! The copies fed by `storesapi.*` events, in the module's inbox transaction. Every write is
//! safe to repeat: an added or created row is upserted, the rest change rows in place.

use async_trait::async_trait;
use messaging::{Handled, HandlerError, Incoming, On, Reset};
use proto::stores as pb;

messaging::messages! {
    /// The store events the store copy follows.
    pub(crate) enum StoreEvent {
        Created(pb::StoreCreated),
        Rebranded(pb::StoreRebranded),
    }
}

messaging::messages! {
    /// The product events the product copy follows.
    pub(crate) enum ProductEvent {
        Added(pb::ProductAdded),
        Rebranded(pb::ProductRebranded),
        PriceChanged(pb::ProductPriceChanged),
        Removed(pb::ProductRemoved),
    }
}

/// The feed of the copies in a schema (`0`), the store copy's consumer named `1`.
pub(crate) struct Feed(pub(crate) &'static str, pub(crate) String);

impl Feed {
    /// Runs `sql` (its `{schema}` replaced) with `binds`: text, then an optional number.
    async fn run(
        &self,
        tx: &mut db::Conn,
        sql: &str,
        text: &[String],
        number: Option<f64>,
    ) -> Handled {
        let sql = sql.replace("{schema}", self.0);
        let mut query = sqlx::query(db::AssertSqlSafe(sql));
        for value in text {
            query = query.bind(value.clone());
        }
        if let Some(number) = number {
            query = query.bind(number);
        }
        query.execute(&mut *tx).await?;
        Ok(())
    }
}

#[async_trait]
impl On<StoreEvent> for Feed {
    async fn on(&self, tx: &mut db::Conn, event: StoreEvent, _: &Incoming) -> Handled {
        match event {
            StoreEvent::Created(e) => {
                let sql = "INSERT INTO {schema}.stores_cache (id, name, location) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, location = excluded.location";
                self.run(tx, sql, &[e.id, e.name, e.location], None).await
            }
            StoreEvent::Rebranded(e) => {
                let sql = "UPDATE {schema}.stores_cache SET name = $2 WHERE id = $1";
                self.run(tx, sql, &[e.id, e.name], None).await
            }
        }
    }
}

#[async_trait]
impl On<ProductEvent> for Feed {
    async fn on(&self, tx: &mut db::Conn, event: ProductEvent, _: &Incoming) -> Handled {
        match event {
            ProductEvent::Added(e) => {
                let sql = "INSERT INTO {schema}.products_cache (id, store_id, name, price) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, name = excluded.name, price = excluded.price";
                self.run(tx, sql, &[e.id, e.store_id, e.name], Some(e.price))
                    .await
            }
            ProductEvent::Rebranded(e) => {
                let sql = "UPDATE {schema}.products_cache SET name = $2 WHERE id = $1";
                self.run(tx, sql, &[e.id, e.name], None).await
            }
            ProductEvent::PriceChanged(e) => {
                let sql = "UPDATE {schema}.products_cache SET price = price + $2 WHERE id = $1";
                self.run(tx, sql, &[e.id], Some(e.delta)).await
            }
            ProductEvent::Removed(e) => {
                let sql = "DELETE FROM {schema}.products_cache WHERE id = $1";
                self.run(tx, sql, &[e.id], None).await
            }
        }
    }
}

#[async_trait]
impl Reset for Feed {
    /// The copies are the stores module's events, read again from the start of the stream.
    async fn reset(&self, tx: &mut db::Conn, consumer: &str) -> Result<(), HandlerError> {
        let table = if consumer == self.1 {
            "stores_cache"
        } else {
            "products_cache"
        };
        let sql = format!("DELETE FROM {}.{table}", self.0);
        sqlx::query(db::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
