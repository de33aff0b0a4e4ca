//! Cosec: the create-order saga execution coordinator.
//!
//! Owns the `cosec` schema (saga instances). Starts an instance for every
//! `ordersapi.OrderCreated` (saga id = order id, SPEC decision 15), sends each step's command,
//! applies the replies from `mallbots.cosec.replies.CreateOrder`, compensates on failure or
//! timeout. `GET /api/cosec/sagas/{orderId}` shows an instance and its history.

mod create_order;
mod rest;

use std::sync::Arc;

use async_trait::async_trait;
use messaging::{Handled, HandlerError, Incoming, On, Subscription};
use proto::{cosec, ordering};

/// The schema this module owns.
pub const SCHEMA: &str = "cosec";

/// Creates or updates the `cosec` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &saga::MIGRATIONS).await?;
    Ok(())
}

/// Adds the saga coordinator to `host`.
///
/// # Errors
/// The module's definition is invalid (a bug caught at start-up).
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    let orchestrator = orchestrator(host.db());
    let outbox = orchestrator.outbox().clone();
    host.rest(rest::router(orchestrator.clone()), rest::openapi());
    let starter = Starter(Arc::new(orchestrator.clone()));
    host.route(messaging::events(SCHEMA, "cosec-ordering", starter))?;
    host.subscribe(
        Subscription::new(SCHEMA, "cosec-replies", cosec::CREATE_ORDER_REPLY_CHANNEL),
        orchestrator.replies(),
    );
    let sweeper = orchestrator.clone();
    host.spawn("create-order saga sweeper", move |stop| async move {
        sweeper.run_sweeper(stop).await;
        Ok(())
    });
    host.relay(outbox);
    Ok(())
}

/// The create-order sagas, read (`mallbots saga list`, `mallbots saga show`).
pub const OPERATIONS: host::Operations = host::Operations {
    read_models: &[],
    sagas: Some(host::Sagas {
        name: "create-order",
        list: |db, stuck| Box::pin(sagas(db, stuck)),
        find: |db, id| Box::pin(saga(db, id)),
    }),
};

async fn sagas(
    db: &db::Db,
    stuck: Option<std::time::Duration>,
) -> anyhow::Result<Vec<host::SagaRecord>> {
    let records = orchestrator(db).list(stuck).await?;
    Ok(records
        .into_iter()
        .map(saga::Record::with_json_data)
        .collect::<Result<_, _>>()?)
}

async fn saga(db: &db::Db, id: &str) -> anyhow::Result<Option<host::SagaRecord>> {
    let record = orchestrator(db).find(id).await?;
    Ok(record.map(saga::Record::with_json_data).transpose()?)
}

/// An orchestrator to read instances with (it sends nothing).
fn orchestrator(db: &db::Db) -> saga::Orchestrator<create_order::CreateOrder> {
    saga::Orchestrator::new(
        create_order::saga(),
        db.clone(),
        SCHEMA,
        messaging::Outbox::new(SCHEMA),
        saga::Timing::default(),
    )
}

/// Starts a saga for each created order.
struct Starter(Arc<saga::Orchestrator<create_order::CreateOrder>>);

#[async_trait]
impl On<ordering::OrderCreated> for Starter {
    async fn on(&self, tx: &mut db::Conn, event: ordering::OrderCreated, _: &Incoming) -> Handled {
        let items: Vec<create_order::Item> = event
            .items
            .into_iter()
            .map(|item| create_order::Item {
                product_id: item.product_id,
                store_id: item.store_id,
                price: item.price,
                quantity: item.quantity,
            })
            .collect();
        let total = money::total(
            items
                .iter()
                .map(|item| (item.price, i64::from(item.quantity))),
        )
        .map_err(|uncountable| HandlerError::Permanent(uncountable.into()))?
        .amount();
        let data = create_order::CreateOrder {
            order_id: event.id.clone(),
            customer_id: event.customer_id,
            payment_id: event.payment_id,
            shopping_id: String::new(),
            items,
            total,
        };
        self.0.start(tx, &event.id, data).await?;
        Ok(())
    }
}
