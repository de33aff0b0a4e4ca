//! [`EventStore`]: load (snapshot + newer events), decide, append with a version check, react
//! in the same transaction, snapshot, commit.

use std::{marker::PhantomData, sync::Arc};

use db::{AssertSqlSafe, Db};

use crate::{
    Aggregate, ConfigError, DomainEvent as _, Envelope, Error, EventHandler, Metadata,
    tables::Sql,
    upcast::{self, current_version},
};

mod read;

/// How many times [`EventStore::execute`] re-runs a command that lost a version race.
const CONFLICT_RETRIES: u32 = 3;

/// The book's snapshot frequency.
const DEFAULT_SNAPSHOT_EVERY: i64 = 3;

/// Stores the events of one aggregate type `A` in `<schema>.events`, running `H` with every
/// append.
pub struct EventStore<A, H = ()> {
    db: Db,
    handler: Arc<H>,
    sql: Arc<Sql>,
    snapshot_every: Option<i64>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A, H> Clone for EventStore<A, H> {
    fn clone(&self) -> Self {
        EventStore {
            db: self.db.clone(),
            handler: self.handler.clone(),
            sql: self.sql.clone(),
            snapshot_every: self.snapshot_every,
            aggregate: PhantomData,
        }
    }
}

/// An aggregate as loaded, with how it was rebuilt.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The state.
    pub aggregate: A,
    /// The version of its last event.
    pub version: i64,
    /// The snapshot it started from, if one was used.
    pub snapshot_version: Option<i64>,
    /// How many events were applied on top of the snapshot (or from the start).
    pub events_replayed: usize,
}

impl<A: Aggregate, H: EventHandler<A>> EventStore<A, H> {
    /// A store for `A` in `schema` (whose tables come from [`crate::MIGRATIONS`]), snapshotting
    /// every 3 versions.
    ///
    /// # Errors
    /// [`ConfigError`] when `A`'s upcasters are not a valid chain or the schema name is invalid.
    pub fn new(db: Db, schema: &str, handler: H) -> Result<Self, ConfigError> {
        if !db::is_valid_schema(schema) {
            return Err(ConfigError::InvalidSchema(schema.to_owned()));
        }
        upcast::validate(A::TYPE, A::UPCASTERS)?;
        // Started at zero, so "no conflicts" is a value on a dashboard, not a gap.
        metrics::counter!("events_appended_total", "aggregate" => A::TYPE).increment(0);
        metrics::counter!("event_append_conflicts_total", "aggregate" => A::TYPE).increment(0);
        Ok(EventStore {
            db,
            handler: Arc::new(handler),
            sql: Arc::new(Sql::new(schema)),
            snapshot_every: Some(DEFAULT_SNAPSHOT_EVERY),
            aggregate: PhantomData,
        })
    }

    /// Snapshots whenever an append reaches or crosses a multiple of `every` versions; `0`
    /// turns snapshots off.
    #[must_use]
    pub fn snapshot_every(mut self, every: u32) -> Self {
        self.snapshot_every = (every > 0).then_some(i64::from(every));
        self
    }

    /// Loads `id`; `None` when no event was ever stored for it.
    ///
    /// # Errors
    /// A database error or an unreadable event.
    pub async fn load(&self, id: &str) -> Result<Option<Loaded<A>>, Error<A::Error>> {
        let mut conn = self.db.pool().acquire().await?;
        self.load_in(&mut conn, id).await
    }

    /// Runs `command` against the current state of `id` and stores the resulting events.
    ///
    /// A lost version race re-runs the command on the fresh state (the decision is pure, so
    /// this is always safe), up to three times before returning [`Error::Conflict`].
    ///
    /// # Errors
    /// [`Error::Rejected`] when the aggregate refuses; otherwise an infrastructure error.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
    ) -> Result<Vec<Envelope<A::Event>>, Error<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_with(id, command, &Metadata::new()).await
    }

    /// [`EventStore::execute`] with `metadata` stored on every event (e.g. a causation id).
    ///
    /// # Errors
    /// As [`EventStore::execute`].
    pub async fn execute_with(
        &self,
        id: &str,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<Vec<Envelope<A::Event>>, Error<A::Error>>
    where
        A::Command: Clone,
    {
        let mut attempt = 0;
        loop {
            let mut tx = self.db.begin().await?;
            match self
                .execute_in(&mut tx, id, command.clone(), metadata)
                .await
            {
                Ok(events) => {
                    tx.commit().await?;
                    return Ok(events);
                }
                Err(Error::Conflict { .. }) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        aggregate = A::TYPE,
                        id,
                        attempt,
                        "version conflict, retrying"
                    );
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Runs `command` inside a transaction the caller owns and commits (rare: when the
    /// command must commit together with other writes, e.g. an inbox row). No retry.
    ///
    /// # Errors
    /// As [`EventStore::execute`]; after an error the transaction must be rolled back.
    pub async fn execute_in(
        &self,
        tx: &mut db::Conn,
        id: &str,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<Vec<Envelope<A::Event>>, Error<A::Error>> {
        let loaded = self.load_in(tx, id).await?;
        let (aggregate, version) = match loaded {
            Some(loaded) => (loaded.aggregate, loaded.version),
            None => (A::default(), 0),
        };
        let events = aggregate.handle(command).map_err(Error::Rejected)?;
        self.append_in(tx, id, aggregate, version, events, metadata)
            .await
    }

    /// Appends `events` to `id` if its stream is still at `expected_version`, in its own
    /// transaction: the low-level write under [`EventStore::execute`].
    ///
    /// # Errors
    /// [`Error::Conflict`] when the stream moved on; otherwise an infrastructure error.
    pub async fn append(
        &self,
        id: &str,
        expected_version: i64,
        events: Vec<A::Event>,
        metadata: &Metadata,
    ) -> Result<Vec<Envelope<A::Event>>, Error<A::Error>> {
        let mut tx = self.db.begin().await?;
        let aggregate = match self.load_in(&mut tx, id).await? {
            Some(loaded) if loaded.version == expected_version => loaded.aggregate,
            None if expected_version == 0 => A::default(),
            // Either way the write would lose: report it before touching the table.
            _ => return Err(conflict::<A>(id)),
        };
        let envelopes = self
            .append_in(&mut tx, id, aggregate, expected_version, events, metadata)
            .await?;
        tx.commit().await?;
        Ok(envelopes)
    }

    #[tracing::instrument(name = "append", skip_all, fields(aggregate = A::TYPE, id))]
    async fn append_in(
        &self,
        tx: &mut db::Conn,
        id: &str,
        mut aggregate: A,
        version: i64,
        events: Vec<A::Event>,
        metadata: &Metadata,
    ) -> Result<Vec<Envelope<A::Event>>, Error<A::Error>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let occurred_at = chrono::Utc::now();
        let metadata_json = serde_json::to_string(metadata)
            .map_err(|e| self.corrupt(id, "metadata", version, e))?;
        let mut envelopes = Vec::with_capacity(events.len());
        for (event, next) in events.into_iter().zip(version + 1..) {
            let data = serde_json::to_string(&event)
                .map_err(|e| self.corrupt(id, event.name(), next, e))?;
            let envelope = Envelope {
                event_id: uuid::Uuid::new_v4().to_string(),
                aggregate_id: id.to_owned(),
                version: next,
                event,
                occurred_at,
                metadata: metadata.clone(),
            };
            let inserted = sqlx::query(AssertSqlSafe(self.sql.insert_event.as_str()))
                .bind(id)
                .bind(A::TYPE)
                .bind(next)
                .bind(&envelope.event_id)
                .bind(envelope.event.name())
                .bind(current_version(A::UPCASTERS, envelope.event.name()))
                .bind(data)
                .bind(&metadata_json)
                .bind(occurred_at.timestamp_micros())
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                Err(e) if db::is_unique_violation(&e) => return Err(conflict::<A>(id)),
                Err(e) => return Err(e.into()),
            }
            aggregate.apply(&envelope.event);
            envelopes.push(envelope);
        }
        self.handler
            .handle(tx, &envelopes)
            .await
            .map_err(Error::Handler)?;
        metrics::counter!("events_appended_total", "aggregate" => A::TYPE)
            .increment(envelopes.len() as u64);

        let new_version = version + i64::try_from(envelopes.len()).unwrap_or(i64::MAX);
        if let Some(every) = self.snapshot_every
            && new_version / every > version / every
        {
            self.save_snapshot(tx, id, &aggregate, new_version).await?;
        }
        Ok(envelopes)
    }

    async fn save_snapshot(
        &self,
        tx: &mut db::Conn,
        id: &str,
        aggregate: &A,
        version: i64,
    ) -> Result<(), Error<A::Error>> {
        let data = serde_json::to_string(aggregate)
            .map_err(|e| self.corrupt(id, "snapshot", version, e))?;
        sqlx::query(AssertSqlSafe(self.sql.upsert_snapshot.as_str()))
            .bind(id)
            .bind(A::TYPE)
            .bind(version)
            .bind(A::SNAPSHOT_VERSION)
            .bind(data)
            .bind(db::now_micros())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    fn corrupt(
        &self,
        id: &str,
        name: &str,
        version: i64,
        error: serde_json::Error,
    ) -> Error<A::Error> {
        Error::Corrupt {
            stream: A::TYPE,
            id: id.to_owned(),
            name: name.to_owned(),
            version,
            reason: error.to_string(),
        }
    }
}

/// A lost optimistic-concurrency race on `id`, counted: a rising rate means hot aggregates.
fn conflict<A: Aggregate>(id: &str) -> Error<A::Error> {
    metrics::counter!("event_append_conflicts_total", "aggregate" => A::TYPE).increment(1);
    Error::Conflict {
        stream: A::TYPE,
        id: id.to_owned(),
    }
}
