//! One database handle, [`Db`], over PostgreSQL or SQLite.
//!
//! Module SQL is written once, in the subset both backends share (`$1` placeholders, TEXT,
//! BIGINT, DOUBLE PRECISION, BOOLEAN; ids as TEXT, times as epoch microseconds, JSON as TEXT),
//! and runs through sqlx's `Any` driver. Each module owns a schema: a PostgreSQL schema, or on
//! SQLite a database file attached under the same name, so `stores.events` means the same on
//! both. Backend-specific SQL lives only in framework crates, behind a `match` on [`Backend`].
//!
//! This crate opens and configures connections and transactions; it never decides what to
//! store.

mod connect;
mod migrate;
mod sql;
pub mod testing;
mod unavailable;

use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

pub use connect::ConnectError;
pub use migrate::{Migration, MigrationError, Migrations};
pub use sql::{in_shapes, padded, placeholders, rows};
pub use sqlx::{AssertSqlSafe, Row};
use unavailable::broken;
pub use unavailable::unavailable;

/// A connection, or a transaction seen as one: what SQL helpers take as their first argument.
pub type Conn = sqlx::AnyConnection;

/// An open write transaction, seen as a [`Conn`]. Rolled back when dropped without
/// [`Tx::commit`].
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    // Released after `inner`: on SQLite, this process's turn to write.
    _writer: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Tx {
    /// Commits.
    ///
    /// # Errors
    /// The database's.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    /// Rolls back.
    ///
    /// # Errors
    /// The database's.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.inner
    }
}
/// A row of a query result.
pub type AnyRow = sqlx::any::AnyRow;

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL (production).
    Postgres,
    /// SQLite files in a data directory (embedded default).
    Sqlite,
}

impl Backend {
    /// The engine behind an open connection (or transaction).
    pub fn of(conn: &Conn) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// Appended to a `SELECT` to hold its rows until the transaction ends: `FOR UPDATE` on
    /// PostgreSQL; nothing on SQLite, where a write transaction (`BEGIN IMMEDIATE`) already
    /// holds the database's one write lock.
    pub fn row_lock(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A PostgreSQL server: a `postgres://` URL or a libpq `key=value` string (as the book's `PG_CONN`).
    Postgres(String),
    /// A directory holding one SQLite file per schema.
    Sqlite(PathBuf),
}

impl fmt::Debug for Target {
    // The connection string may carry a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Postgres(conn) => write!(f, "Postgres({})", connect::redact(conn)),
            Target::Sqlite(dir) => write!(f, "Sqlite({})", dir.display()),
        }
    }
}

/// Pool limits and timeouts.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a caller waits for a free connection (or for the server at start-up).
    pub acquire_timeout: Duration,
    /// Longest a single statement may run on PostgreSQL; `None` = the server's default.
    pub statement_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// A pool of connections to one database, shared by every module of the process.
#[derive(Clone)]
pub struct Db {
    pool: sqlx::AnyPool,
    backend: Backend,
    /// The PostgreSQL URL, kept for the few features a pooled `Any` connection cannot offer
    /// (LISTEN/NOTIFY).
    postgres_url: Option<Arc<str>>,
    /// SQLite only: one write transaction at a time, queued here rather than inside SQLite.
    /// A writer waiting in SQLite's busy handler holds a pool connection; enough of them
    /// starve the pool, and a transaction that needs a second connection (a handler reading
    /// through another module's gRPC service) then stalls until the acquire timeout.
    writer: Option<Arc<tokio::sync::Semaphore>>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens a pool to `target` with `schemas` available (created on PostgreSQL by the
    /// migrations; attached on SQLite to every connection), and checks that it answers.
    ///
    /// # Errors
    /// [`ConnectError`] when the server cannot be reached, the data directory cannot be
    /// created, or a schema name is not a plain identifier.
    pub async fn connect(
        target: &Target,
        schemas: &[&str],
        options: &Options,
    ) -> Result<Db, ConnectError> {
        connect::connect(target, schemas, options).await
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, to run a query outside any transaction (reads).
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    /// Whether `other` is a clone of this handle (one pool, one database): a transaction on
    /// either can write what the other reads. The embedded broker acks a delivery in the
    /// handler's transaction when its log lives there.
    pub fn is_same(&self, other: &Db) -> bool {
        match (
            &self.postgres_url,
            &other.postgres_url,
            &self.writer,
            &other.writer,
        ) {
            (Some(mine), Some(theirs), _, _) => Arc::ptr_eq(mine, theirs),
            (_, _, Some(mine), Some(theirs)) => Arc::ptr_eq(mine, theirs),
            _ => false,
        }
    }

    /// The PostgreSQL URL, for a dedicated listener connection; `None` on SQLite.
    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }

    /// Begins a write transaction.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken up front and waited for
    /// (busy timeout) instead of failing half-way when a read lock cannot be upgraded.
    ///
    /// # Errors
    /// A pool timeout or a database error.
    ///
    /// A pooled connection the server closed since its last use (a restart) fails its `BEGIN`;
    /// nothing has been done on it yet, so another connection is taken, until the acquire
    /// timeout (then [`sqlx::Error::PoolTimedOut`]: the database is unavailable).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let turn = self.writer_turn().await?;
        let started = std::time::Instant::now();
        let inner = loop {
            let begun = match self.backend {
                Backend::Postgres => self.pool.begin().await,
                Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            };
            match begun {
                Err(error)
                    if broken(&error)
                        && started.elapsed() < self.pool.options().get_acquire_timeout() =>
                {
                    tracing::debug!(%error, "a pooled connection was closed; taking another");
                }
                begun => break begun?,
            }
        };
        Ok(Tx {
            inner,
            _writer: turn,
        })
    }

    /// Runs one writing statement on its own (autocommit), taking its turn among the writers
    /// on SQLite like [`Db::begin`] does: a write waiting in SQLite's busy handler would hold a
    /// pooled connection (ADR 9).
    ///
    /// # Errors
    /// A pool timeout or a database error.
    pub async fn write<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
        let _turn = self.writer_turn().await?;
        query.execute(&self.pool).await
    }

    /// On SQLite, this process's turn to write (waited for up to the busy timeout).
    async fn writer_turn(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, sqlx::Error> {
        let Some(writer) = &self.writer else {
            return Ok(None);
        };
        let permit = tokio::time::timeout(
            connect::SQLITE_BUSY_TIMEOUT,
            Arc::clone(writer).acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        Ok(Some(permit))
    }

    /// Runs `work` in a write transaction: committed when it returns `Ok`, rolled back when it
    /// returns `Err` (or panics). The way state-stored modules change rows.
    ///
    /// # Errors
    /// `work`'s error, or the database's (converted into `E`).
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        E: From<sqlx::Error>,
        F: for<'c> FnOnce(&'c mut Conn) -> futures::future::BoxFuture<'c, Result<T, E>>,
    {
        let mut tx = self.begin().await?;
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Inside a write transaction on `conn`, keeps other writers of `table` waiting until it
    /// ends (readers go on): on PostgreSQL an `EXCLUSIVE` table lock; on SQLite the write
    /// transaction already does.
    ///
    /// # Errors
    /// The database's.
    pub async fn lock_against_writes(
        &self,
        conn: &mut Conn,
        table: &str,
    ) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::query(AssertSqlSafe(format!(
                "LOCK TABLE {table} IN EXCLUSIVE MODE"
            )))
            .execute(conn)
            .await?;
        }
        Ok(())
    }

    /// Checks that the database answers a trivial query within `timeout`.
    ///
    /// # Errors
    /// A description of why it does not.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    /// Applies the pending steps of `migrations` to `schema` (see [`Migrations`]).
    ///
    /// # Errors
    /// [`MigrationError`] when a step fails or an applied step was edited afterwards.
    pub async fn migrate(
        &self,
        schema: &str,
        migrations: &Migrations,
    ) -> Result<(), MigrationError> {
        migrate::run(self, schema, migrations).await
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reading what the `Any` driver cannot decode the same way on both backends.
pub trait RowExt {
    /// A boolean column: `BOOLEAN` on PostgreSQL, `INTEGER` 0/1 on SQLite (the `Any` driver
    /// refuses SQLite's `BOOLEAN` declared type, so SQLite DDL declares booleans `INTEGER`).
    ///
    /// # Errors
    /// The column is missing or is neither a boolean nor an integer.
    fn flag<I: sqlx::ColumnIndex<AnyRow>>(&self, index: I) -> Result<bool, sqlx::Error>;
}

impl RowExt for AnyRow {
    fn flag<I: sqlx::ColumnIndex<AnyRow>>(&self, index: I) -> Result<bool, sqlx::Error> {
        let index = index.index(self)?;
        match self.try_get::<bool, _>(index) {
            Ok(flag) => Ok(flag),
            Err(_) => Ok(self.try_get::<i64, _>(index)? != 0),
        }
    }
}

/// True when `error` is a unique or primary-key violation, on either backend.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Checks that `name` can be used unquoted as a schema name on both backends.
pub fn is_valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48
}

/// A stable PostgreSQL advisory-lock key for `name` (the same in every process and build).
pub fn advisory_key(name: &str) -> i64 {
    i64::from_ne_bytes(migrate::fnv1a(name.as_bytes()).to_ne_bytes())
}

/// Microseconds since the Unix epoch: how framework tables store instants on both backends.
pub fn now_micros() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}
