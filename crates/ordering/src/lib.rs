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
    use messaging::Subscription;
    use proto::{baskets, depot, ordering, payments};
    let outbox = messaging::Outbox::new(SCHEMA);
    let app = app::App::new(host.db().clone(), outbox.clone())?;
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app.clone()));
    let commands = Subscription::new(SCHEMA, "ordering-commands", ordering::COMMAND_CHANNEL)
        .accept(&[
            ordering::APPROVE_ORDER_COMMAND,
            ordering::REJECT_ORDER_COMMAND,
        ]);
    host.subscribe(
        commands,
        messaging::replying(outbox.clone(), handlers::Commands(app.clone())),
    );
    let checkouts = Subscription::new(
        SCHEMA,
        "ordering-baskets",
        baskets::BASKET_AGGREGATE_CHANNEL,
    )
    .accept(&[baskets::BASKET_CHECKED_OUT_EVENT]);
    host.subscribe(checkouts, handlers::Events(app.clone()));
    let lists = Subscription::new(
        SCHEMA,
        "ordering-depot",
        depot::SHOPPING_LIST_AGGREGATE_CHANNEL,
    )
    .accept(&[depot::SHOPPING_LIST_COMPLETED_EVENT]);
    host.subscribe(lists, handlers::Events(app.clone()));
    let invoices = Subscription::new(
        SCHEMA,
        "ordering-payments",
        payments::INVOICE_AGGREGATE_CHANNEL,
    )
    .accept(&[payments::INVOICE_PAID_EVENT]);
    host.subscribe(invoices, handlers::Events(app));
    host.relay(outbox);
    Ok(())
}
