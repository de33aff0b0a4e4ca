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

/// The copies of the stores module's data, rewound (`mallbots replay caches`).
pub const OPERATIONS: host::Operations = host::Operations {
    read_models: &[copies::read_model(&[
        caches::STORES_CONSUMER,
        caches::PRODUCTS_CONSUMER,
    ])],
    sagas: None,
};

/// The schema this module owns.
pub const SCHEMA: &str = "depot";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "depot",
    steps: &[
        db::Migration {
            version: 1,
            description: "shopping lists and caches",
            sql: repo::TABLES,
        },
        db::Migration {
            version: 2,
            description: "product prices copied",
            sql: caches::PRICE,
        },
    ],
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
    let outbox = messaging::Outbox::new(SCHEMA);
    let copies = copies::Copies::new(SCHEMA, host.channel("STORES")?);
    let app = app::App::new(host.db().clone(), outbox.clone(), copies.clone());
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app.clone()));
    let commands = messaging::commands(
        SCHEMA,
        "depot-commands",
        outbox.clone(),
        handlers::Commands(app),
    );
    host.route(commands)?;
    copies.mount(host, caches::STORES_CONSUMER, caches::PRODUCTS_CONSUMER)?;
    host.relay(outbox);
    Ok(())
}
