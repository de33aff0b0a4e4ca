//! Fresh, isolated databases for tests, on the backends `MALLBOTS_TEST_BACKENDS` selects.
//!
//! `embedded` (the default) selects SQLite only; `all` selects SQLite and PostgreSQL, and then
//! a PostgreSQL that cannot be reached is a test failure, never a skip. Each [`TestDb`] is a new
//! temporary directory or a new PostgreSQL database, removed when it is dropped.

mod server;

pub use server::PrivatePostgres;

use std::path::PathBuf;

use crate::{Backend, Db, Options, Target};

/// Environment variable naming the backends under test: `embedded`, `postgres` or `all`.
pub const BACKENDS_VAR: &str = "MALLBOTS_TEST_BACKENDS";
/// Environment variable with the PostgreSQL server URL tests create their databases on.
pub const POSTGRES_VAR: &str = "MALLBOTS_TEST_PG";
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The backends this test run covers.
///
/// # Panics
/// When `MALLBOTS_TEST_BACKENDS` holds something else than the documented values: a typo
/// must not silently shrink the run.
pub fn selected() -> Vec<Backend> {
    match std::env::var(BACKENDS_VAR).as_deref() {
        Err(_) | Ok("") | Ok("embedded") => vec![Backend::Sqlite],
        Ok("postgres") => vec![Backend::Postgres],
        Ok("all") => vec![Backend::Sqlite, Backend::Postgres],
        Ok(other) => panic!("{BACKENDS_VAR}={other:?}: expected embedded, postgres or all"),
    }
}

/// Whether tests on `backend` run in this test run.
pub fn is_selected(backend: Backend) -> bool {
    selected().contains(&backend)
}

/// The PostgreSQL server tests use.
pub fn postgres_server() -> String {
    std::env::var(POSTGRES_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    /// The open pool.
    pub db: Db,
    /// How to open it again (e.g. for an app under test).
    pub target: Target,
    _guard: Guard,
}

/// Removes a test database or directory when dropped.
#[derive(Debug)]
pub struct Guard {
    _cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(PathBuf),
    Database { server: String, name: String },
}

/// A new empty database on `backend` with `schemas` available, and its target.
///
/// # Panics
/// When the database cannot be created: the test cannot run.
pub async fn fresh(backend: Backend, schemas: &[&str]) -> TestDb {
    let (target, guard) = fresh_target(backend).await;
    let db = Db::connect(
        &target,
        schemas,
        &Options {
            max_connections: 8,
            ..Options::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("opening the test database: {e}"));
    TestDb {
        db,
        target,
        _guard: guard,
    }
}

/// A new empty database on `backend`, not opened: for code under test that opens it itself.
/// Dropping the returned guard removes it.
///
/// # Panics
/// When the database cannot be created.
pub async fn fresh_target(backend: Backend) -> (Target, Guard) {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("mallbots-test-{unique}"));
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            (
                Target::Sqlite(dir.clone()),
                Guard {
                    _cleanup: Cleanup::Dir(dir),
                },
            )
        }
        Backend::Postgres => {
            let server = postgres_server();
            let name = format!("mallbots_test_{unique}");
            admin(&server, &format!("CREATE DATABASE {name}")).await.unwrap_or_else(|e| {
                panic!("creating a test database on {server} ({BACKENDS_VAR} selects postgres): {e}")
            });
            let url = database_url(&server, &name);
            (
                Target::Postgres(url),
                Guard {
                    _cleanup: Cleanup::Database { server, name },
                },
            )
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { server, name } => {
                let (server, sql) = (
                    server.clone(),
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
                // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime
                        .block_on(admin(&server, &sql))
                        .map_err(std::io::Error::other)
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    tracing::warn!(database = %name, "could not drop the test database");
                }
            }
        }
    }
}

async fn admin(server: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(server).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(query) => format!("{prefix}/{name}?{query}"),
        None => format!("{prefix}/{name}"),
    }
}

/// Declares each listed `async fn name(backend: db::Backend)` as two tests, `sqlite::name` and
/// `postgres::name`, so the output shows which backend passed. A backend not selected by
/// `MALLBOTS_TEST_BACKENDS` returns at once, saying so on stderr (CI selects both).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !$crate::testing::is_selected($crate::Backend::Postgres) {
                        eprintln!("postgres not selected by {}", $crate::testing::BACKENDS_VAR);
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Appends one result (a JSON line) to the file `BENCH_JSON` names, for `scripts/bench`, which
/// turns a run's results into BENCHMARKS.md; nothing when it is unset.
///
/// # Panics
/// When the file cannot be written: the run's results would be incomplete.
pub fn record_bench(result: impl std::fmt::Display) {
    use std::io::Write as _;
    let Ok(path) = std::env::var("BENCH_JSON") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening BENCH_JSON {path}: {e}"));
    writeln!(file, "{result}").unwrap_or_else(|e| panic!("writing BENCH_JSON {path}: {e}"));
}

/// Whether the test PostgreSQL server ([`postgres_server`]) answers now: benchmarks measure
/// PostgreSQL only when it does.
pub async fn postgres_answers() -> bool {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&postgres_server())
        .await
        .is_ok()
}

/// Test certificates in `dir`, made with the `openssl` command line: a CA (`ca.pem`), a server
/// certificate it signed for `localhost` and 127.0.0.1 (`server.pem`, `server.key`), and an
/// unrelated CA (`other-ca.pem`) for the refusals. For the tests that start a TLS server of
/// their own (PostgreSQL, NATS).
///
/// # Panics
/// When `openssl` fails: the test cannot run.
pub fn certificates(dir: &std::path::Path) {
    let run = |script: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("a writable directory");
    for (name, subject) in [
        ("ca", "/CN=mallbots test CA"),
        ("other-ca", "/CN=someone else"),
    ] {
        run(&format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '{subject}' \
             -keyout {name}.key -out {name}.pem 2>/dev/null"
        ));
    }
    run(
        "openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null \
         && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile san.ext -out server.pem 2>/dev/null",
    );
}
