//! Schema migrations: ordered SQL steps per backend, applied once, under a lock.
//!
//! Each component that owns tables in a schema (a module, or a framework crate installing its
//! tables there) brings a [`Migrations`] list. Applied steps are recorded in
//! `<schema>.schema_migrations` with a checksum, so an edited step is refused instead of being
//! silently skipped. All pending steps of one list run in one transaction: on PostgreSQL under a
//! transaction-scoped advisory lock (so replicas starting together migrate once), on SQLite
//! under `BEGIN IMMEDIATE` (one writer at a time anyway).

use sqlx::{AssertSqlSafe, Row as _};

use crate::{Backend, Db};

/// One step, written once for both backends.
///
/// The SQL (several statements allowed) may use these tokens, expanded per backend:
///
/// | token | PostgreSQL | SQLite |
/// |---|---|---|
/// | `{schema}` | the schema name | the schema name |
/// | `{serial}` | `BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY` | `INTEGER PRIMARY KEY` |
/// | `{bytes}` | `BYTEA` | `BLOB` |
/// | `{bool}` | `BOOLEAN` | `INTEGER` (read it with [`crate::RowExt::flag`]) |
/// | `{index}` / `{on}` | `` / `<schema>.` | `<schema>.` / `` |
///
/// The last pair exists because the two engines qualify indexes differently:
/// `CREATE INDEX {index}name ON {on}table (…)` is right on both.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Position in the list, starting at 1; never reused.
    pub version: i64,
    /// What it does, recorded next to the version.
    pub description: &'static str,
    /// The SQL, with the tokens above.
    pub sql: &'static str,
}

impl Migration {
    /// The SQL of this step for `backend` and `schema`.
    pub fn expand(&self, backend: Backend, schema: &str) -> String {
        let qualified = format!("{schema}.");
        let (serial, bytes, boolean, index, on) = match backend {
            Backend::Postgres => (
                "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                "BYTEA",
                "BOOLEAN",
                "",
                qualified.as_str(),
            ),
            Backend::Sqlite => (
                "INTEGER PRIMARY KEY",
                "BLOB",
                "INTEGER",
                qualified.as_str(),
                "",
            ),
        };
        self.sql
            .replace("{schema}", schema)
            .replace("{serial}", serial)
            .replace("{bytes}", bytes)
            .replace("{bool}", boolean)
            .replace("{index}", index)
            .replace("{on}", on)
    }
}

/// The migrations of one component, e.g. the `es` tables or the `stores` module's own tables.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// Who owns these steps; versions are per component.
    pub component: &'static str,
    /// The steps in order.
    pub steps: &'static [Migration],
}

/// Why a migration did not apply.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The schema name is not a plain identifier.
    #[error("invalid schema name {0:?}")]
    InvalidSchema(String),
    /// A step's SQL changed after it was applied.
    #[error(
        "migration {component} {version} ({description}) in schema {schema} changed after it was applied"
    )]
    Changed {
        /// The schema.
        schema: String,
        /// The component.
        component: &'static str,
        /// The step.
        version: i64,
        /// Its description.
        description: &'static str,
    },
    /// The database refused a statement.
    #[error("migration {component} {version} in schema {schema} failed: {source}")]
    Failed {
        /// The schema.
        schema: String,
        /// The component.
        component: &'static str,
        /// The step (0 = the bookkeeping itself).
        version: i64,
        /// The database error.
        source: sqlx::Error,
    },
}

pub(crate) async fn run(
    db: &Db,
    schema: &str,
    migrations: &Migrations,
) -> Result<(), MigrationError> {
    if !crate::is_valid_schema(schema) {
        return Err(MigrationError::InvalidSchema(schema.to_owned()));
    }
    let failed = |version: i64| {
        let schema = schema.to_owned();
        move |source| MigrationError::Failed {
            schema,
            component: migrations.component,
            version,
            source,
        }
    };

    let mut tx = db.begin().await.map_err(failed(0))?;
    if db.backend() == Backend::Postgres {
        // Serialises concurrent starters; released at commit or rollback.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(schema))
            .execute(&mut *tx)
            .await
            .map_err(failed(0))?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut *tx)
        .await
        .map_err(failed(0))?;
    }
    let ledger = format!(
        "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
            component TEXT NOT NULL,
            version BIGINT NOT NULL,
            description TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at BIGINT NOT NULL,
            PRIMARY KEY (component, version)
        )"
    );
    sqlx::raw_sql(AssertSqlSafe(ledger))
        .execute(&mut *tx)
        .await
        .map_err(failed(0))?;

    let applied = sqlx::query(AssertSqlSafe(format!(
        "SELECT version, checksum FROM {schema}.schema_migrations WHERE component = $1"
    )))
    .bind(migrations.component)
    .fetch_all(&mut *tx)
    .await
    .map_err(failed(0))?;

    for step in migrations.steps {
        let sql = step.expand(db.backend(), schema);
        let checksum = format!("{:016x}", fnv1a(sql.as_bytes()));
        let recorded = applied
            .iter()
            .find(|row| row.get::<i64, _>(0) == step.version);
        if let Some(row) = recorded {
            if row.get::<String, _>(1) != checksum {
                return Err(MigrationError::Changed {
                    schema: schema.to_owned(),
                    component: migrations.component,
                    version: step.version,
                    description: step.description,
                });
            }
            continue;
        }
        tracing::info!(
            schema,
            component = migrations.component,
            version = step.version,
            step.description,
            "migrating"
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(failed(step.version))?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.schema_migrations (component, version, description, checksum, applied_at)
             VALUES ($1, $2, $3, $4, $5)"
        )))
        .bind(migrations.component)
        .bind(step.version)
        .bind(step.description)
        .bind(checksum)
        .bind(crate::now_micros())
        .execute(&mut *tx)
        .await
        .map_err(failed(step.version))?;
    }
    tx.commit().await.map_err(failed(0))
}

/// A stable advisory-lock key per schema.
fn lock_key(schema: &str) -> i64 {
    crate::advisory_key(&format!("mallbots.migrate.{schema}"))
}

/// FNV-1a: a stable, dependency-free fingerprint (not a security boundary).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Migration = Migration {
        version: 1,
        description: "t",
        sql: "CREATE TABLE {schema}.t (n {serial}, b {bytes}, f {bool}); CREATE INDEX {index}t_f ON {on}t (f)",
    };

    #[test]
    fn tokens_expand_per_backend() {
        assert_eq!(
            STEP.expand(Backend::Postgres, "shop"),
            "CREATE TABLE shop.t (n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, b BYTEA, f BOOLEAN); CREATE INDEX t_f ON shop.t (f)"
        );
        assert_eq!(
            STEP.expand(Backend::Sqlite, "shop"),
            "CREATE TABLE shop.t (n INTEGER PRIMARY KEY, b BLOB, f INTEGER); CREATE INDEX shop.t_f ON t (f)"
        );
    }
}
