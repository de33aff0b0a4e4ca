//! The messaging tables a module's schema gets: outbox, inbox, dead letters.

use db::{Migration, Migrations};

/// Installs `{schema}.outbox`, `{schema}.inbox` and `{schema}.dead_letters`. Run for every
/// module that sends or receives messages.
pub const MIGRATIONS: Migrations = Migrations {
    component: "messaging",
    steps: &[Migration {
        version: 1,
        description: "outbox, inbox, dead letters",
        postgres: "
            CREATE TABLE {schema}.outbox (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                body BYTEA NOT NULL,
                staged_at BIGINT NOT NULL,
                published_at BIGINT
            );
            CREATE INDEX outbox_unpublished ON {schema}.outbox (seq) WHERE published_at IS NULL;
            CREATE INDEX outbox_published ON {schema}.outbox (published_at) WHERE published_at IS NOT NULL;
            CREATE TABLE {schema}.inbox (
                consumer TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                received_at BIGINT NOT NULL,
                PRIMARY KEY (consumer, id)
            );
            CREATE INDEX inbox_received ON {schema}.inbox (received_at);
            CREATE TABLE {schema}.dead_letters (
                consumer TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                body BYTEA NOT NULL,
                error TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                dead_at BIGINT NOT NULL,
                replay_requested BOOLEAN NOT NULL DEFAULT FALSE,
                PRIMARY KEY (consumer, id)
            );",
        sqlite: "
            CREATE TABLE {schema}.outbox (
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                body BLOB NOT NULL,
                staged_at BIGINT NOT NULL,
                published_at BIGINT
            );
            CREATE INDEX {schema}.outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
            CREATE INDEX {schema}.outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
            CREATE TABLE {schema}.inbox (
                consumer TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                received_at BIGINT NOT NULL,
                PRIMARY KEY (consumer, id)
            );
            CREATE INDEX {schema}.inbox_received ON inbox (received_at);
            CREATE TABLE {schema}.dead_letters (
                consumer TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                body BLOB NOT NULL,
                error TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                dead_at BIGINT NOT NULL,
                replay_requested INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (consumer, id)
            );",
    }],
};
