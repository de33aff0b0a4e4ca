//! Depot: shopping lists for the bots.
//!
//! Owns the `depot` schema (state-stored lists, changed under a row lock). Handles the saga's
//! `depotapi.CreateShoppingListCommand` (replying `CreatedShoppingListReply` with the list id),
//! `InitiateShoppingCommand` (pending → available) and `CancelShoppingListCommand`; bots assign
//! and complete lists over REST, and a completed list publishes
//! `depotapi.ShoppingListCompleted`. Keeps copies of stores and products from stores' events,
//! asking the stores module over gRPC when a copy is missing.

mod app;
mod caches;
mod domain;
mod grpc;
mod handlers;
mod repo;
mod rest;

/// The consumers `mallbots replay caches` rewinds: copies of the stores module's events.
pub const REBUILDABLE: [&str; 2] = [caches::STORES_CONSUMER, caches::PRODUCTS_CONSUMER];

/// The schema this module owns.
pub const SCHEMA: &str = "depot";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "depot",
    steps: &[db::Migration {
        version: 1,
        description: "shopping lists and caches",
        sql: repo::TABLES,
    }],
};

/// Creates or updates the `depot` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// Adds the depot module to `host`.
///
/// # Errors
/// The stores service address is not usable.
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    use messaging::Subscription;
    use proto::{depot, stores};
    let outbox = messaging::Outbox::new(SCHEMA);
    let app = app::App::new(host.db().clone(), outbox.clone(), host.channel("STORES")?);
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app.clone()));
    let commands = Subscription::new(SCHEMA, "depot-commands", depot::COMMAND_CHANNEL).accept(&[
        depot::CREATE_SHOPPING_LIST_COMMAND,
        depot::INITIATE_SHOPPING_COMMAND,
        depot::CANCEL_SHOPPING_LIST_COMMAND,
    ]);
    host.subscribe(
        commands,
        messaging::replying(outbox.clone(), handlers::Commands(app)),
    );
    host.subscribe(
        Subscription::new(
            SCHEMA,
            caches::STORES_CONSUMER,
            stores::STORE_AGGREGATE_CHANNEL,
        )
        .accept(caches::STORE_EVENTS),
        caches::Feed,
    );
    host.subscribe(
        Subscription::new(
            SCHEMA,
            caches::PRODUCTS_CONSUMER,
            stores::PRODUCT_AGGREGATE_CHANNEL,
        )
        .accept(caches::PRODUCT_EVENTS),
        caches::Feed,
    );
    host.relay(outbox);
    Ok(())
}
