//! Customers: the customer registry and the check that a customer may order.
//!
//! Owns the `customers` schema (state-stored rows, changed under a row lock). Publishes
//! `customersapi.*` events through its outbox; handles `customersapi.AuthorizeCustomer` for the
//! create-order saga. Serves REST under `/api/customers` and `customerspb.CustomersService`.

mod access;
mod app;
mod domain;
mod grpc;
mod handlers;
mod messages;
mod repo;
mod rest;

/// The schema this module owns.
pub const SCHEMA: &str = "customers";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "customers",
    steps: &[db::Migration {
        version: 1,
        description: "customers",
        sql: repo::TABLE,
    }],
};

/// Creates or updates the `customers` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// Adds the customers module to `host`: REST, gRPC, the command subscription, the outbox relay.
///
/// # Errors
/// The module's definition is invalid (a bug caught at start-up).
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    let outbox = messaging::Outbox::new(SCHEMA);
    let app = app::App::new(host.db().clone(), outbox.clone());
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app.clone()));
    let commands = handlers::Commands(app);
    host.route(messaging::commands(
        SCHEMA,
        "customers-commands",
        outbox.clone(),
        commands,
    ))?;
    host.relay(outbox);
    Ok(())
}
