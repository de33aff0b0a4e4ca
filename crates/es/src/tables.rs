//! The event-store tables, installed in each schema that stores events, and their SQL.

use db::{Migration, Migrations};

/// Installs `{schema}.events` and `{schema}.snapshots`. Run with [`db::Db::migrate`] for every
/// schema whose module stores events.
pub const MIGRATIONS: Migrations = Migrations {
    component: "es",
    steps: &[Migration {
        version: 1,
        description: "events and snapshots",
        // `position` orders the whole table for projection rebuilds; the unique stream version
        // is the optimistic-concurrency check.
        sql: "
            CREATE TABLE {schema}.events (
                position {serial},
                stream_id TEXT NOT NULL,
                stream_name TEXT NOT NULL,
                stream_version BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                event_name TEXT NOT NULL,
                event_version INTEGER NOT NULL,
                event_data TEXT NOT NULL,
                metadata TEXT NOT NULL,
                occurred_at BIGINT NOT NULL,
                UNIQUE (stream_id, stream_name, stream_version)
            );
            CREATE TABLE {schema}.snapshots (
                stream_id TEXT NOT NULL,
                stream_name TEXT NOT NULL,
                stream_version BIGINT NOT NULL,
                snapshot_version INTEGER NOT NULL,
                snapshot_data TEXT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (stream_id, stream_name)
            );",
    }],
};

/// The statements of one store, formatted once with its schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) load_stream: String,
    pub(crate) load_events: String,
    pub(crate) read_all: String,
    pub(crate) insert_event: String,
    pub(crate) upsert_snapshot: String,
}

impl Sql {
    pub(crate) fn new(schema: &str) -> Sql {
        Sql {
            // One round trip: the snapshot of the aggregate's current shape ($3), if there is
            // one, first (its name is empty), then the events after it.
            load_stream: format!(
                "SELECT stream_version, '' AS event_name, snapshot_version, snapshot_data FROM {schema}.snapshots
                 WHERE stream_id = $1 AND stream_name = $2 AND snapshot_version = $3
                 UNION ALL
                 SELECT stream_version, event_name, event_version, event_data FROM {schema}.events
                 WHERE stream_id = $1 AND stream_name = $2 AND stream_version > COALESCE(
                     (SELECT stream_version FROM {schema}.snapshots
                      WHERE stream_id = $1 AND stream_name = $2 AND snapshot_version = $3), 0)
                 ORDER BY 1"
            ),
            load_events: format!(
                "SELECT stream_version, event_name, event_version, event_data
                 FROM {schema}.events
                 WHERE stream_id = $1 AND stream_name = $2 AND stream_version > $3
                 ORDER BY stream_version"
            ),
            read_all: format!(
                "SELECT position, stream_id, stream_version, event_id, event_name, event_version, event_data, metadata, occurred_at
                 FROM {schema}.events
                 WHERE stream_name = $1 AND position > $2
                 ORDER BY position LIMIT $3"
            ),
            insert_event: format!(
                "INSERT INTO {schema}.events
                 (stream_id, stream_name, stream_version, event_id, event_name, event_version, event_data, metadata, occurred_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            upsert_snapshot: format!(
                "INSERT INTO {schema}.snapshots
                 (stream_id, stream_name, stream_version, snapshot_version, snapshot_data, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (stream_id, stream_name) DO UPDATE SET
                 stream_version = excluded.stream_version, snapshot_version = excluded.snapshot_version,
                 snapshot_data = excluded.snapshot_data, updated_at = excluded.updated_at"
            ),
        }
    }
}
