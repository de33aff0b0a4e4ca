//! Search: a read model of orders to search by customer, store, product, time, total and status.
//!
//! Owns the `search` schema. Built from customers, stores and ordering events (its own durable
//! consumers: `search-customers`, `search-stores`, `search-products`, `search-orders`), asking
//! customers and stores over gRPC for a name it has not seen yet. Serves
//! `POST /api/search/orders`, `GET /api/search/orders/{id}` and `searchpb.SearchService`.

mod access;
mod grpc;
mod projection;
mod queries;
mod rest;

/// The schema this module owns.
pub const SCHEMA: &str = "search";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "search",
    steps: &[
        db::Migration {
            version: 1,
            description: "orders read model and caches",
            sql: projection::TABLES,
        },
        db::Migration {
            version: 2,
            description: "store locations and product prices copied",
            sql: projection::COPIED,
        },
    ],
};

/// Creates or updates the `search` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// The orders model and its copies, rewound (`mallbots replay search`): the orders first.
pub const OPERATIONS: host::Operations = host::Operations {
    read_models: &[host::ReadModel {
        name: "search",
        about: "Search's orders (and its customer, store and product copies), from the stream",
        rebuild: host::Rebuild::Rewind(&[
            projection::ORDERS_CONSUMER,
            projection::CUSTOMERS_CONSUMER,
            projection::STORES_CONSUMER,
            projection::PRODUCTS_CONSUMER,
        ]),
    }],
    sagas: None,
};

/// Adds the search module to `host`.
///
/// # Errors
/// A peer's address is not usable.
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    use proto::customers;
    let projector = projection::Projector {
        customers: customers::customers_service_client::CustomersServiceClient::new(
            host.channel("CUSTOMERS")?,
        ),
        copies: copies::Copies::new(SCHEMA, host.channel("STORES")?),
    };
    host.rest(rest::router(host.db().clone()), rest::openapi());
    host.grpc(grpc::server(host.db().clone()));
    use messaging::events;
    use projection::{CustomerEvent, OrderEvent};
    let p = || projector.clone();
    host.route(
        events::<CustomerEvent, _>(SCHEMA, projection::CUSTOMERS_CONSUMER, p()).rewindable(),
    )?;
    host.route(events::<OrderEvent, _>(SCHEMA, projection::ORDERS_CONSUMER, p()).rewindable())?;
    let copies = &projector.copies;
    copies.mount(
        host,
        projection::STORES_CONSUMER,
        projection::PRODUCTS_CONSUMER,
    )
}
