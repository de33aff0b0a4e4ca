//! Payments: payment authorizations and invoices.
//!
//! Owns the `payments` schema. Authorizing a payment checks the customer with the customers
//! module over gRPC (`RPC_SERVICES` `CUSTOMERS`). Handles the saga's
//! `paymentsapi.ConfirmPayment`; invoices every `ordersapi.OrderReadied` (invoice id = order id)
//! and cancels the pending invoice of an `ordersapi.OrderCanceled`; publishes
//! `paymentsapi.InvoicePaid`. Serves REST under `/api/payments` and `paymentspb.PaymentsService`.

mod access;
mod app;
mod domain;
mod grpc;
mod handlers;
mod repo;
mod rest;

/// The schema this module owns.
pub const SCHEMA: &str = "payments";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "payments",
    steps: &[
        db::Migration {
            version: 1,
            description: "payments and invoices",
            sql: repo::TABLES,
        },
        db::Migration {
            version: 2,
            description: "the customer an invoice bills",
            sql: repo::INVOICE_CUSTOMER,
        },
    ],
};

/// Creates or updates the `payments` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// Adds the payments module to `host`.
///
/// # Errors
/// The customers service address is not usable.
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    let outbox = messaging::Outbox::new(SCHEMA);
    let app = app::App::new(
        host.db().clone(),
        outbox.clone(),
        host.channel("CUSTOMERS")?,
    );
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app.clone()));
    let commands = handlers::Commands(app.clone());
    host.route(messaging::commands(
        SCHEMA,
        "payments-commands",
        outbox.clone(),
        commands,
    ))?;
    host.route(messaging::events(
        SCHEMA,
        "payments-orders",
        handlers::OrderEvents(app),
    ))?;
    host.relay(outbox);
    Ok(())
}
