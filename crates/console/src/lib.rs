//! Console: the mall as its operators watch it, at `/console` in the same binary.
//!
//! Owns the `console` schema: a record of the stream — every order's place on the board and
//! every message about it — kept by one subscription to all of the mall's subjects, so the
//! console knows only what crosses the broker, as any module would (ADR 21). Serves the page
//! (plain HTML and JavaScript compiled in), the board, one order's timeline (its messages,
//! and when each consumer of this process handled them, from their inboxes), the queues
//! (outbox depth, consumer lag, dead letters, with replay and discard), and a Server-Sent
//! Events stream that keeps open pages current.

mod board;
mod live;
mod operations;
mod record;
mod rest;

use messaging::Subscription;

/// The schema this module owns.
pub const SCHEMA: &str = "console";

/// Its one durable consumer: every subject of the mall.
pub const CONSUMER: &str = "console-stream";

/// How long the console's consumer waits, once caught up, before reading again.
const LINGER: std::time::Duration = std::time::Duration::from_millis(200);
/// Messages recorded per transaction at most.
const BATCH: usize = 256;

const MIGRATIONS: db::Migrations = db::Migrations {
    component: "console",
    steps: &[db::Migration {
        version: 1,
        description: "the board's orders and their timelines",
        sql: board::TABLES,
    }],
};

/// Creates or updates the `console` schema.
///
/// # Errors
/// A migration failed.
pub async fn migrate(db: &db::Db) -> anyhow::Result<()> {
    db.migrate(SCHEMA, &messaging::MIGRATIONS).await?;
    db.migrate(SCHEMA, &MIGRATIONS).await?;
    Ok(())
}

/// Adds the console to `host`.
///
/// # Errors
/// Never at present; kept for symmetry with modules whose set-up can fail.
pub async fn mount(host: &mut host::Host) -> anyhow::Result<()> {
    let hub = live::Hub::new(host.db().clone(), host.queues());
    host.rest(rest::router(hub.clone()), rest::openapi());
    host.subscribe(
        Subscription::new(SCHEMA, CONSUMER, "mallbots.>")
            .accept(&record::recorded())
            // Its rows ignore a second insert and its statuses never move back: no inbox.
            .idempotent()
            // A page can wait a fifth of a second; the mall then pays a few commits a second
            // for its console, not one per message (ADR 21).
            .linger(LINGER)
            // Two statements a batch however large (`Recorder::handle_batch`).
            .batch(BATCH),
        record::Recorder {
            live: hub.live.clone(),
        },
    );
    host.spawn("console live updates", move |stop| async move {
        hub.tick(stop).await;
        Ok(())
    });
    Ok(())
}
