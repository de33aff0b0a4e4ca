//! Baskets: what customers are about to buy.
//!
//! Owns the `baskets` schema. Basket is event sourced (snapshots every 3 versions); checkout
//! publishes `basketsapi.BasketCheckedOut`, which starts an order. Keeps copies of stores and
//! products from stores' events (`baskets-stores`, `baskets-products`), asking the stores
//! module over gRPC when a copy is missing; asks customers and payments to validate starts and
//! checkouts. Serves REST under `/api/baskets` and `basketspb.BasketService`.

mod access;
mod app;
mod caches;
mod domain;
mod grpc;
mod messages;
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
pub const SCHEMA: &str = "baskets";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "baskets",
    steps: &[
        db::Migration {
            version: 1,
            description: "stores and products caches",
            sql: caches::TABLES,
        },
        db::Migration {
            version: 2,
            description: "store locations copied",
            sql: caches::LOCATION,
        },
    ],
};

/// Creates or updates the `baskets` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &es::MIGRATIONS).await?;
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// Adds the baskets module to `host`.
///
/// # Errors
/// A peer's address is not usable.
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    use proto::{customers, payments};
    let outbox = messaging::Outbox::new(SCHEMA);
    let copies = copies::Copies::new(SCHEMA, host.channel("STORES")?);
    let peers = app::Peers {
        copies: copies.clone(),
        customers: customers::customers_service_client::CustomersServiceClient::new(
            host.channel("CUSTOMERS")?,
        ),
        payments: payments::payments_service_client::PaymentsServiceClient::new(
            host.channel("PAYMENTS")?,
        ),
    };
    let app = app::App::new(host.db().clone(), outbox.clone(), peers)?;
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app));
    copies.mount(host, caches::STORES_CONSUMER, caches::PRODUCTS_CONSUMER)?;
    host.relay(outbox);
    Ok(())
}
