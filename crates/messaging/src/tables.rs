//! The messaging tables a module's schema gets: outbox, inbox, dead letters, rewinds, owners.

use db::{Migration, Migrations};

/// Installs `{schema}.outbox`, `{schema}.inbox` and `{schema}.dead_letters`. Run for every
/// module that sends or receives messages.
pub const MIGRATIONS: Migrations = Migrations {
    component: "messaging",
    steps: &[Migration {
        version: 1,
        description: "outbox, inbox, dead letters",
        sql: "
            CREATE TABLE {schema}.outbox (
                seq {serial},
                id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                body {bytes} NOT NULL,
                staged_at BIGINT NOT NULL,
                published_at BIGINT
            );
            CREATE INDEX {index}outbox_unpublished ON {on}outbox (seq) WHERE published_at IS NULL;
            CREATE INDEX {index}outbox_published ON {on}outbox (published_at) WHERE published_at IS NOT NULL;
            CREATE TABLE {schema}.inbox (
                consumer TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                received_at BIGINT NOT NULL,
                PRIMARY KEY (consumer, id)
            );
            CREATE INDEX {index}inbox_received ON {on}inbox (received_at);
            CREATE TABLE {schema}.dead_letters (
                consumer TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                subject TEXT NOT NULL,
                body {bytes} NOT NULL,
                error TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                dead_at BIGINT NOT NULL,
                replay_requested {bool} NOT NULL,
                PRIMARY KEY (consumer, id)
            );",
    },
    Migration {
        version: 2,
        description: "the trace context of each staged message, for the relay's span",
        sql: "ALTER TABLE {schema}.outbox ADD COLUMN traceparent TEXT;",
    },
    Migration {
        version: 3,
        description: "rewinds: a consumer read again from the start of the stream",
        sql: "
            CREATE TABLE {schema}.rewinds (
                consumer TEXT PRIMARY KEY,
                requested_at BIGINT NOT NULL,
                started_at BIGINT,
                done_at BIGINT,
                outcome TEXT
            );",
    },
    Migration {
        version: 4,
        description: "owners: which replica handles which share of a consumer (ADR 23)",
        sql: "
            CREATE TABLE {schema}.consumer_owners (
                consumer TEXT NOT NULL,
                part INTEGER NOT NULL,
                parts INTEGER NOT NULL,
                owner TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                PRIMARY KEY (consumer, part)
            );
            CREATE TABLE {schema}.consumer_members (
                member TEXT PRIMARY KEY,
                expires_at BIGINT NOT NULL
            );",
    }],
};
