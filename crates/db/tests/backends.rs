//! The portable-SQL contract of `Db`, on SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use db::{
    Backend, Db, Migration, MigrationError, Migrations, Options, Row as _, RowExt as _, Target,
};

db::backend_tests!(
    numbered_placeholders_bind_by_number,
    each_schema_has_its_own_tables,
    a_dropped_transaction_rolls_back,
    migrations_apply_once,
    an_edited_migration_is_refused,
    concurrent_migrations_apply_once,
    unique_violations_are_recognised,
    data_survives_reopening,
    a_row_lock_holds_the_row_until_the_transaction_ends,
);

const TABLES: Migrations = Migrations {
    component: "test",
    steps: &[Migration {
        version: 1,
        description: "items",
        sql: "CREATE TABLE {schema}.items (id TEXT PRIMARY KEY, qty BIGINT NOT NULL, price DOUBLE PRECISION NOT NULL, ok {bool} NOT NULL)",
    }],
};

async fn fresh(backend: Backend) -> db::testing::TestDb {
    let test = db::testing::fresh(backend, &["alpha", "beta"]).await;
    test.db.migrate("alpha", &TABLES).await.unwrap();
    test.db.migrate("beta", &TABLES).await.unwrap();
    test
}

async fn count(db: &Db, schema: &str) -> i64 {
    sqlx::query(db::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {schema}.items"
    )))
    .fetch_one(db.pool())
    .await
    .unwrap()
    .get(0)
}

async fn numbered_placeholders_bind_by_number(backend: Backend) {
    let test = fresh(backend).await;
    // $2 before $1, and $1 twice: SQLite must bind by number, not by position.
    sqlx::query("INSERT INTO alpha.items (id, qty, price, ok) VALUES ($2, $1, $3, $1 > 1)")
        .bind(5_i64)
        .bind("x")
        .bind(2.5_f64)
        .execute(test.db.pool())
        .await
        .unwrap();
    let row = sqlx::query("SELECT id, qty, price, ok FROM alpha.items WHERE id = $1")
        .bind("x")
        .fetch_one(test.db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "x");
    assert_eq!(row.get::<i64, _>(1), 5);
    assert!((row.get::<f64, _>(2) - 2.5).abs() < f64::EPSILON);
    assert!(row.flag(3).unwrap());
    assert!(row.flag("qty").unwrap(), "a non-zero integer reads as true");
}

async fn each_schema_has_its_own_tables(backend: Backend) {
    let test = fresh(backend).await;
    sqlx::query("INSERT INTO alpha.items (id, qty, price, ok) VALUES ('a', 1, 1, TRUE)")
        .execute(test.db.pool())
        .await
        .unwrap();
    assert_eq!(
        (
            count(&test.db, "alpha").await,
            count(&test.db, "beta").await
        ),
        (1, 0)
    );
}

async fn a_dropped_transaction_rolls_back(backend: Backend) {
    let test = fresh(backend).await;
    {
        let mut tx = test.db.begin().await.unwrap();
        sqlx::query("INSERT INTO alpha.items (id, qty, price, ok) VALUES ('a', 1, 1, TRUE)")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let mut tx = test.db.begin().await.unwrap();
    sqlx::query("INSERT INTO alpha.items (id, qty, price, ok) VALUES ('b', 1, 1, TRUE)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&test.db, "alpha").await, 1);
}

async fn migrations_apply_once(backend: Backend) {
    let test = fresh(backend).await;
    // Re-running is a no-op (a second CREATE TABLE would fail).
    test.db.migrate("alpha", &TABLES).await.unwrap();
    let applied: i64 =
        sqlx::query("SELECT COUNT(*) FROM alpha.schema_migrations WHERE component = 'test'")
            .fetch_one(test.db.pool())
            .await
            .unwrap()
            .get(0);
    assert_eq!(applied, 1);
}

async fn an_edited_migration_is_refused(backend: Backend) {
    let test = fresh(backend).await;
    let edited = Migrations {
        component: "test",
        steps: &[Migration {
            version: 1,
            description: "items",
            sql: "SELECT 1",
        }],
    };
    let error = test.db.migrate("alpha", &edited).await.unwrap_err();
    assert!(
        matches!(error, MigrationError::Changed { version: 1, .. }),
        "{error}"
    );
}

async fn concurrent_migrations_apply_once(backend: Backend) {
    let test = db::testing::fresh(backend, &["gamma"]).await;
    let other = Db::connect(&test.target, &["gamma"], &Options::default())
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        test.db.migrate("gamma", &TABLES),
        other.migrate("gamma", &TABLES)
    );
    first.unwrap();
    second.unwrap();
    assert_eq!(count(&test.db, "gamma").await, 0);
    other.close().await;
}

async fn unique_violations_are_recognised(backend: Backend) {
    let test = fresh(backend).await;
    let insert = || {
        sqlx::query("INSERT INTO alpha.items (id, qty, price, ok) VALUES ('a', 1, 1, TRUE)")
            .execute(test.db.pool())
    };
    insert().await.unwrap();
    let error = insert().await.unwrap_err();
    assert!(db::is_unique_violation(&error), "{error}");
}

async fn data_survives_reopening(backend: Backend) {
    let test = fresh(backend).await;
    sqlx::query("INSERT INTO beta.items (id, qty, price, ok) VALUES ('a', 1, 1, TRUE)")
        .execute(test.db.pool())
        .await
        .unwrap();
    test.db.close().await;
    let reopened = Db::connect(&test.target, &["alpha", "beta"], &Options::default())
        .await
        .unwrap();
    assert_eq!(count(&reopened, "beta").await, 1);
    reopened.close().await;
}

#[tokio::test]
async fn an_unreachable_server_is_one_clear_error_without_the_password() {
    let target = Target::Postgres("postgres://app:hunter2@127.0.0.1:1/mallbots".into());
    let options = Options {
        acquire_timeout: Duration::from_secs(2),
        ..Options::default()
    };
    let error = Db::connect(&target, &[], &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error
            .starts_with("cannot connect to PostgreSQL at postgres://app:***@127.0.0.1:1/mallbots"),
        "{error}"
    );
    assert!(
        !error.contains("hunter2") && !error.contains('\n'),
        "{error}"
    );
}

#[tokio::test]
async fn a_schema_name_that_is_not_an_identifier_is_refused() {
    let target = Target::Sqlite(std::env::temp_dir().join("mallbots-never-created"));
    let error = Db::connect(&target, &["drop table"], &Options::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid schema name"), "{error}");
}

async fn a_row_lock_holds_the_row_until_the_transaction_ends(backend: Backend) {
    let test = fresh(backend).await;
    sqlx::query("INSERT INTO alpha.items (id, qty, price, ok) VALUES ('a', 1, 1, TRUE)")
        .execute(test.db.pool())
        .await
        .unwrap();
    let select = format!(
        "SELECT qty FROM alpha.items WHERE id = 'a'{}",
        backend.row_lock()
    );
    let mut tx = test.db.begin().await.unwrap();
    assert_eq!(Backend::of(&tx), backend);
    let qty: i64 = sqlx::query(db::AssertSqlSafe(select.clone()))
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
    assert_eq!(qty, 1);
    if backend == Backend::Postgres {
        // SQLite needs no clause: its second writer cannot even begin (`BEGIN IMMEDIATE`).
        let mut other = test.db.begin().await.unwrap();
        sqlx::query("SET LOCAL lock_timeout = '100ms'")
            .execute(&mut *other)
            .await
            .unwrap();
        let blocked = sqlx::query(db::AssertSqlSafe(select.clone()))
            .fetch_one(&mut *other)
            .await;
        assert!(blocked.is_err(), "a second locker got the row");
        other.rollback().await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut after = test.db.begin().await.unwrap();
    sqlx::query(db::AssertSqlSafe(select))
        .fetch_one(&mut *after)
        .await
        .unwrap();
    after.commit().await.unwrap();
}
