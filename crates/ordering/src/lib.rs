//! Ordering: an order from checkout to completion.
//!
//! Owns the `ordering` schema. Order is event sourced, with a guarded state machine. Creates
//! orders from `basketsapi.BasketCheckedOut` (order id = basket id); handles the saga's
//! `ordersapi.ApproveOrder`/`RejectOrder`; readies an order on `depotapi.ShoppingListCompleted`
//! and completes it on `paymentsapi.InvoicePaid`. Publishes every `ordersapi.*` event. Serves
//! REST under `/api/ordering` and `orderingpb.OrderingService`.

mod access;
mod app;
mod domain;
mod grpc;
mod handlers;
mod messages;
mod rest;

/// The schema this module owns.
pub const SCHEMA: &str = "ordering";

/// Creates or updates the `ordering` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &es::MIGRATIONS).await?;
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    Ok(())
}

/// Adds the ordering module to `host`.
///
/// # Errors
/// The module's definition is invalid (a bug caught at start-up).
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    use messaging::{commands, events};
    use proto::{baskets, depot, payments};
    let outbox = messaging::Outbox::new(SCHEMA);
    let app = app::App::new(host.db().clone(), outbox.clone())?;
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app.clone()));
    let orders = handlers::Commands(app.clone());
    host.route(commands(
        SCHEMA,
        "ordering-commands",
        outbox.clone(),
        orders,
    ))?;
    let facts = || handlers::Events(app.clone());
    host.route(events::<baskets::BasketCheckedOut, _>(
        SCHEMA,
        "ordering-baskets",
        facts(),
    ))?;
    host.route(events::<depot::ShoppingListCompleted, _>(
        SCHEMA,
        "ordering-depot",
        facts(),
    ))?;
    host.route(events::<payments::InvoicePaid, _>(
        SCHEMA,
        "ordering-payments",
        facts(),
    ))?;
    host.relay(outbox);
    Ok(())
}
