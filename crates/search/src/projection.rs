//! The orders read model (`search.orders`), built from customers, stores and ordering events.
//!
//! Names come from local copies of customers, stores and products (fed by their events), with a
//! gRPC fallback to their modules when a copy is missing. Statuses are ordering's.

use async_trait::async_trait;
use copies::{Copies, Via};
use db::Row as _;
use host::Channel;
use messaging::{Handled, HandlerError, Incoming, On, Reset};
use proto::{
    customers::{self, customers_service_client::CustomersServiceClient},
    ordering,
};
use serde::{Deserialize, Serialize};

/// Migration step: stores and products copied as every module copies them (`copies`).
pub(crate) const COPIED: &str = "
    ALTER TABLE search.stores_cache ADD COLUMN location TEXT NOT NULL DEFAULT '';
    ALTER TABLE search.products_cache ADD COLUMN price DOUBLE PRECISION NOT NULL DEFAULT 0;";

/// Migration step (see `crate::MIGRATIONS`).
pub(crate) const TABLES: &str = "
    CREATE TABLE search.customers_cache (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE search.stores_cache (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE search.products_cache (id TEXT PRIMARY KEY, store_id TEXT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE search.orders (
        order_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        customer_name TEXT NOT NULL,
        items TEXT NOT NULL,
        total DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX {index}orders_customer ON {on}orders (customer_id, created_at);
    CREATE INDEX {index}orders_created ON {on}orders (created_at, order_id);
    CREATE TABLE search.order_stores (order_id TEXT NOT NULL, store_id TEXT NOT NULL, PRIMARY KEY (order_id, store_id));
    CREATE TABLE search.order_products (order_id TEXT NOT NULL, product_id TEXT NOT NULL, PRIMARY KEY (order_id, product_id));
    CREATE INDEX {index}order_stores_store ON {on}order_stores (store_id);
    CREATE INDEX {index}order_products_product ON {on}order_products (product_id);";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) product_id: String,
    pub(crate) store_id: String,
    pub(crate) product_name: String,
    pub(crate) store_name: String,
    pub(crate) price: f64,
    pub(crate) quantity: i64,
}

/// The subscriptions' handler.
#[derive(Clone)]
pub(crate) struct Projector {
    pub(crate) customers: CustomersServiceClient<Channel>,
    pub(crate) copies: Copies,
}

/// A store or product from the copies: `None` if the stores module does not know it (the
/// order is shown without its name); a transient error if it cannot answer now.
fn shown<T>(found: Result<T, copies::Missing>) -> Result<Option<T>, HandlerError> {
    match found {
        Ok(found) => Ok(Some(found)),
        Err(copies::Missing::NotFound(_)) => Ok(None),
        Err(other) => Err(HandlerError::Transient(other.into())),
    }
}

/// A name from another module: `None` if it does not exist there (the order is shown without
/// it); a transient error if the module cannot answer now.
fn fallback<T>(
    what: &'static str,
    answer: Result<tonic::Response<T>, tonic::Status>,
) -> Result<Option<T>, HandlerError> {
    match answer {
        Ok(found) => Ok(Some(found.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(HandlerError::Transient(anyhow::anyhow!(
            "{what} fallback failed: {}",
            status.message()
        ))),
    }
}

impl Projector {
    async fn customer_name(&self, tx: &mut db::Conn, id: &str) -> Result<String, HandlerError> {
        if let Some(row) = sqlx::query("SELECT name FROM search.customers_cache WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            return Ok(row.try_get(0)?);
        }
        let answer = self
            .customers
            .clone()
            .get_customer(customers::GetCustomerRequest { id: id.to_owned() })
            .await;
        let Some(found) = fallback("customer", answer)? else {
            return Ok(String::new());
        };
        let name = found.customer.map(|c| c.name).unwrap_or_default();
        upsert(tx, "INSERT INTO search.customers_cache (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", id, &name).await?;
        Ok(name)
    }

    async fn order_created(
        &self,
        tx: &mut db::Conn,
        event: ordering::OrderCreated,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        let customer_name = self.customer_name(tx, &event.customer_id).await?;
        let mut items = Vec::with_capacity(event.items.len());
        for item in &event.items {
            let product = self.copies.product(Via::Tx(tx), &item.product_id).await;
            let product_name = shown(product)?.map(|p| p.name).unwrap_or_default();
            let store = self.copies.store(Via::Tx(tx), &item.store_id).await;
            let store_name = shown(store)?.map(|s| s.name).unwrap_or_default();
            items.push(Item {
                product_id: item.product_id.clone(),
                store_id: item.store_id.clone(),
                product_name,
                store_name,
                price: item.price,
                quantity: i64::from(item.quantity),
            });
        }
        let total = money::total(items.iter().map(|i| (i.price, i.quantity)))
            .map_err(|uncountable| HandlerError::Permanent(uncountable.into()))?
            .amount();
        let created_at = message.envelope.occurred_at.timestamp_micros();
        let json = serde_json::to_string(&items).map_err(|e| HandlerError::Permanent(e.into()))?;
        sqlx::query(
            "INSERT INTO search.orders (order_id, customer_id, customer_name, items, total, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&event.customer_id)
        .bind(customer_name)
        .bind(json)
        .bind(total)
        .bind("pending")
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        for item in &items {
            for (table, column, value) in [
                ("order_stores", "store_id", &item.store_id),
                ("order_products", "product_id", &item.product_id),
            ] {
                let sql = format!(
                    "INSERT INTO search.{table} (order_id, {column}) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                );
                sqlx::query(db::AssertSqlSafe(sql))
                    .bind(&event.id)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }

    async fn status(
        &self,
        tx: &mut db::Conn,
        order_id: &str,
        status: &str,
        at: i64,
    ) -> Result<(), HandlerError> {
        let updated = sqlx::query(
            "UPDATE search.orders SET status = $2, updated_at = $3 WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(status)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            // Its OrderCreated has not been projected yet (it may be waiting for a name): retry.
            return Err(HandlerError::Transient(anyhow::anyhow!(
                "order {order_id} is not in the read model yet"
            )));
        }
        Ok(())
    }
}

async fn upsert(
    tx: &mut db::Conn,
    sql: &'static str,
    id: &str,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql)
        .bind(id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The durable consumers feeding the search model.
pub(crate) const ORDERS_CONSUMER: &str = "search-orders";
pub(crate) const CUSTOMERS_CONSUMER: &str = "search-customers";
pub(crate) const STORES_CONSUMER: &str = "search-stores";
pub(crate) const PRODUCTS_CONSUMER: &str = "search-products";

messaging::messages! {
    /// What the customers cache follows.
    pub(crate) enum CustomerEvent {
        Registered(customers::CustomerRegistered),
        Erased(customers::CustomerErased),
    }
}

messaging::messages! {
    /// What the orders follow.
    pub(crate) enum OrderEvent {
        Created(ordering::OrderCreated),
        Approved(ordering::OrderApproved),
        Rejected(ordering::OrderRejected),
        Readied(ordering::OrderReadied),
        Canceled(ordering::OrderCanceled),
        Completed(ordering::OrderCompleted),
    }
}

#[async_trait]
impl Reset for Projector {
    /// Everything here is rebuilt from the stream: the orders from ordering's events, the
    /// customers' copy from theirs (and a miss asks their service anyway).
    async fn reset(&self, tx: &mut db::Conn, consumer: &str) -> Result<(), HandlerError> {
        let tables: &[&str] = match consumer {
            ORDERS_CONSUMER => &[
                "search.order_products",
                "search.order_stores",
                "search.orders",
            ],
            CUSTOMERS_CONSUMER => &["search.customers_cache"],
            // The copies of stores and products rewind through `copies`' own feeds.
            other => {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "search does not rebuild {other} here"
                )));
            }
        };
        for table in tables {
            sqlx::query(db::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl On<CustomerEvent> for Projector {
    async fn on(&self, tx: &mut db::Conn, event: CustomerEvent, _: &Incoming) -> Handled {
        match event {
            CustomerEvent::Registered(e) => {
                sqlx::query(
                    "INSERT INTO search.customers_cache (id, name) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                )
                .bind(e.id)
                .bind(e.name)
                .execute(&mut *tx)
                .await?;
            }
            CustomerEvent::Erased(e) => {
                // The customer's name goes from the cache and from every order showing it.
                sqlx::query("DELETE FROM search.customers_cache WHERE id = $1")
                    .bind(&e.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE search.orders SET customer_name = '' WHERE customer_id = $1")
                    .bind(&e.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl On<OrderEvent> for Projector {
    async fn on(&self, tx: &mut db::Conn, event: OrderEvent, message: &Incoming) -> Handled {
        let (id, status) = match event {
            OrderEvent::Created(created) => return self.order_created(tx, created, message).await,
            OrderEvent::Approved(e) => (e.id, "approved"),
            OrderEvent::Rejected(e) => (e.id, "rejected"),
            OrderEvent::Readied(e) => (e.id, "ready"),
            OrderEvent::Canceled(e) => (e.id, "cancelled"),
            OrderEvent::Completed(e) => (e.id, "completed"),
        };
        let at = message.envelope.occurred_at.timestamp_micros();
        self.status(tx, &id, status, at).await
    }
}
