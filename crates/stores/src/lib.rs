//! Stores: the mall's stores and the products they sell.
//!
//! Owns the `stores` schema. Store and Product are event sourced (snapshots every 3 versions);
//! the mall (`stores.stores`) and catalog (`stores.products`) read models are written in the
//! same transaction as the events, with the `storesapi.*` integration events staged in the
//! outbox. Consumes nothing. Serves REST under `/api/stores` and `storespb.StoresService`.

mod access;
mod app;
mod catalog;
mod domain;
mod grpc;
mod mall;
mod messages;
mod rebuild;
mod rest;

/// The schema this module owns.
pub const SCHEMA: &str = "stores";

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "stores",
    steps: &[
        db::Migration {
            version: 1,
            description: "mall",
            sql: mall::TABLE,
        },
        db::Migration {
            version: 2,
            description: "catalog",
            sql: catalog::TABLE,
        },
        db::Migration {
            version: 3,
            description: "store owners",
            sql: mall::OWNER,
        },
    ],
};

/// The mall and the catalog, projected again from the event store (`mallbots replay mall`,
/// `mallbots replay catalog`).
pub const OPERATIONS: host::Operations = host::Operations {
    read_models: &[
        host::ReadModel {
            name: "mall",
            about: "The stores as shoppers list them, from the Store events",
            rebuild: host::Rebuild::Project(|db| Box::pin(rebuild::mall(db))),
        },
        host::ReadModel {
            name: "catalog",
            about: "The products of every store, from the Product events",
            rebuild: host::Rebuild::Project(|db| Box::pin(rebuild::catalog(db))),
        },
    ],
    sagas: None,
};

/// Creates or updates the `stores` schema: event store, messaging and read-model tables.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &es::MIGRATIONS).await?;
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// Adds the stores module to `host`: REST, gRPC, and its outbox relay.
///
/// # Errors
/// The module's definition is invalid (a bug caught at start-up).
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    let outbox = messaging::Outbox::new(SCHEMA);
    let app = app::App::new(host.db().clone(), outbox.clone())?;
    host.rest(rest::router(app.clone()), rest::openapi());
    host.grpc(grpc::server(app));
    host.relay(outbox);
    Ok(())
}
