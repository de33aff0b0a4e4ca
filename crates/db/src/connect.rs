//! Opening a pool on either backend, and turning the book's `PG_CONN` forms into a URL.

use std::{path::Path, sync::Arc, time::Duration};

use futures::FutureExt as _;
use sqlx::{
    AssertSqlSafe, Executor as _,
    any::{AnyConnectOptions, AnyPoolOptions},
};

use crate::{Backend, Db, Options, Target, is_valid_schema};

/// Why a [`Db`] could not be opened. Its message is one line fit for an operator.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A schema name that is not a lowercase identifier.
    #[error("invalid schema name {0:?}: use lowercase letters, digits and '_'")]
    InvalidSchema(String),
    /// `PG_CONN` could not be understood.
    #[error("invalid PostgreSQL connection string {conn}: {reason}")]
    InvalidConnectionString {
        /// The string, password removed.
        conn: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory could not be created or resolved.
    #[error("cannot use data directory {dir}: {source}")]
    DataDir {
        /// The directory.
        dir: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// More schemas than SQLite can attach to one connection.
    #[error(
        "SQLite attaches at most {SQLITE_MAX_ATTACHED} module files to a connection; {0} were asked for (run fewer modules per process, or use PostgreSQL)"
    )]
    TooManySchemas(usize),
    /// The server did not accept a connection.
    #[error("cannot connect to {target}: {source}")]
    Unreachable {
        /// The target, password removed.
        target: String,
        /// The driver's error.
        source: sqlx::Error,
    },
}

pub(crate) async fn connect(
    target: &Target,
    schemas: &[&str],
    options: &Options,
) -> Result<Db, ConnectError> {
    if let Some(bad) = schemas.iter().find(|s| !is_valid_schema(s)) {
        return Err(ConnectError::InvalidSchema((*bad).to_owned()));
    }
    sqlx::any::install_default_drivers();
    match target {
        Target::Postgres(conn) => connect_postgres(conn, options).await,
        Target::Sqlite(dir) => connect_sqlite(dir, schemas, options).await,
    }
}

async fn connect_postgres(conn: &str, options: &Options) -> Result<Db, ConnectError> {
    let url = postgres_url(conn)?;
    let connect_options: AnyConnectOptions =
        url.parse()
            .map_err(|e: sqlx::Error| ConnectError::InvalidConnectionString {
                conn: redact(conn),
                reason: e.to_string(),
            })?;
    let statement_timeout = options.statement_timeout;
    let pool = pool_options(options)
        .after_connect(move |conn, _| {
            async move {
                if let Some(timeout) = statement_timeout {
                    let sql = format!("SET statement_timeout = {}", timeout.as_millis());
                    conn.execute(AssertSqlSafe(sql)).await?;
                }
                Ok(())
            }
            .boxed()
        })
        .connect_with(connect_options)
        .await
        .map_err(|source| ConnectError::Unreachable {
            target: format!("PostgreSQL at {}", redact(conn)),
            source,
        })?;
    Ok(Db {
        pool,
        backend: Backend::Postgres,
        postgres_url: Some(Arc::from(url)),
        writer: None,
    })
}

/// The pool settings both backends share. sqlx would ping every connection it hands out: a
/// round trip per transaction, ~20 per order on PostgreSQL. A connection back from work a
/// moment ago is alive; one that sat idle (a server restart may have closed it since) is
/// still checked.
fn pool_options(options: &Options) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            async move {
                if meta.idle_for > IDLE_BEFORE_PING {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            }
            .boxed()
        })
}

/// How long a pooled connection may sit idle before it is checked again on its way out of
/// the pool.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(2);

/// How long a SQLite writer waits for its turn (`PRAGMA busy_timeout` below, and [`crate::Db::begin`]).
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Each database file's page cache on each pooled connection, in KiB when negative (SQLite's
/// default is 2,000). Every module is a file attached to every connection, so the default let
/// a busy process's caches grow to ~100 MiB (12 files × 4 connections × 2 MB) over the first
/// hour; the operating system's page cache keeps the files warm behind a smaller one.
const SQLITE_CACHE: i32 = -256;

/// The attachments SQLite is built to allow (`LIBSQLITE3_FLAGS` in `.cargo/config.toml`).
const SQLITE_MAX_ATTACHED: usize = 16;

async fn connect_sqlite(
    dir: &Path,
    schemas: &[&str],
    options: &Options,
) -> Result<Db, ConnectError> {
    if schemas.len() > SQLITE_MAX_ATTACHED {
        return Err(ConnectError::TooManySchemas(schemas.len()));
    }
    let dir_error = |source| ConnectError::DataDir {
        dir: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(dir_error)?;
    let dir = dir.canonicalize().map_err(dir_error)?;
    let url = format!("sqlite://{}?mode=rwc", encode_path(&dir.join("main.db")));
    let connect_options: AnyConnectOptions =
        url.parse().map_err(|source| ConnectError::Unreachable {
            target: format!("SQLite in {}", dir.display()),
            source,
        })?;

    let attachments: Arc<[(String, String)]> = schemas
        .iter()
        .map(|schema| {
            (
                (*schema).to_owned(),
                dir.join(format!("{schema}.db")).display().to_string(),
            )
        })
        .collect();
    let pool = pool_options(options)
        .after_connect(move |conn, _| {
            let attachments = attachments.clone();
            async move {
                // WAL: readers never block the writer. NORMAL sync: a commit survives a process
                // crash; an OS crash may lose the last commits, never corrupt the file.
                conn.execute(AssertSqlSafe(format!("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = {SQLITE_CACHE}")))
                    .await?;
                for (schema, file) in attachments.iter() {
                    sqlx::query(AssertSqlSafe(format!("ATTACH DATABASE $1 AS {schema}")))
                        .bind(file.clone())
                        .execute(&mut *conn)
                        .await?;
                    let pragmas = format!("PRAGMA {schema}.journal_mode = WAL; PRAGMA {schema}.synchronous = NORMAL; PRAGMA {schema}.cache_size = {SQLITE_CACHE}");
                    conn.execute(AssertSqlSafe(pragmas)).await?;
                }
                Ok(())
            }
            .boxed()
        })
        .connect_with(connect_options)
        .await
        .map_err(|source| ConnectError::Unreachable { target: format!("SQLite in {}", dir.display()), source })?;
    Ok(Db {
        pool,
        backend: Backend::Sqlite,
        postgres_url: None,
        writer: Some(Arc::new(tokio::sync::Semaphore::new(1))),
    })
}

/// Percent-encodes what a URL path cannot carry as is.
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.display().to_string().bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Accepts a `postgres://` URL as is, or converts a libpq `key=value …` string (what the book's
/// docker files put in `PG_CONN`) into one.
pub(crate) fn postgres_url(conn: &str) -> Result<String, ConnectError> {
    let conn = conn.trim();
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        return Ok(conn.to_owned());
    }
    let invalid = |reason: &str| ConnectError::InvalidConnectionString {
        conn: redact(conn),
        reason: reason.to_owned(),
    };
    let mut host = "localhost".to_owned();
    let mut port = "5432".to_owned();
    let mut user = String::new();
    let mut password = String::new();
    let mut dbname = String::new();
    let mut params = Vec::new();
    for pair in split_pairs(conn).map_err(&invalid)? {
        let (key, value) = pair;
        match key.as_str() {
            "host" => host = value,
            "port" => port = value,
            "user" => user = value,
            "password" => password = value,
            "dbname" => dbname = value,
            // TLS: the server's CA (verify-ca / verify-full) and a client certificate.
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "application_name"
            | "connect_timeout" | "options" => params.push(format!("{key}={}", encode(&value))),
            // search_path is the book's; our SQL always names its schema, so it is not needed.
            "search_path" => {}
            other => return Err(invalid(&format!("unknown key {other:?}"))),
        }
    }
    if conn.is_empty() {
        return Err(invalid("empty"));
    }
    let credentials = match (user.is_empty(), password.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!("{}@", encode(&user)),
        (false, false) => format!("{}:{}@", encode(&user), encode(&password)),
    };
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    Ok(format!(
        "postgres://{credentials}{host}:{port}/{}{query}",
        encode(&dbname)
    ))
}

fn split_pairs(conn: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut pairs = Vec::new();
    let mut chars = conn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err("expected key=value pairs");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted value"),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        pairs.push((key, value));
    }
}

fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"._-~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The connection string with any password replaced by `***`.
pub(crate) fn redact(conn: &str) -> String {
    if let Some(rest) = conn.split_once("://").map(|(_, rest)| rest)
        && let Some((credentials, host)) = rest.split_once('@')
    {
        let scheme = &conn[..conn.len() - rest.len()];
        let user = credentials.split(':').next().unwrap_or_default();
        let hidden = if credentials.contains(':') {
            ":***"
        } else {
            ""
        };
        return format!("{scheme}{user}{hidden}@{host}");
    }
    match split_pairs(conn) {
        Ok(pairs) => pairs
            .into_iter()
            .map(|(k, v)| {
                if k == "password" {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => "<unparsable>".to_owned(),
    }
}

#[cfg(test)]
mod tests;
