//! A customer asks to be forgotten (issue 14): after `DELETE /api/customers/{id}` and a whole
//! order before it, no table of any module holds the customer's name or number in plain text
//! (or inside a stored message's bytes). What the broker still holds is bounded by its
//! retention (README, ADR 18).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use db::{Backend, Row as _};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{TestApp, spawn_app};

db::backend_tests!(an_erased_customer_leaves_no_trace_in_any_module);

const NAME: &str = "Zebulon Erasable";
const NUMBER: &str = "555-0199-7731";

/// `(schema, table)` of every module's tables.
async fn tables(app: &TestApp) -> Vec<(String, String)> {
    let modules: Vec<&str> = mallbots::MODULES.iter().map(|m| m.name).collect();
    let mut found = Vec::new();
    for schema in modules {
        let names: Vec<String> = match app.backend {
            Backend::Postgres => sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            )
            .bind(schema)
            .fetch_all(app.db.pool())
            .await
            .unwrap(),
            Backend::Sqlite => sqlx::query_scalar(db::AssertSqlSafe(format!(
                "SELECT name FROM {schema}.sqlite_master WHERE type = 'table'"
            )))
            .fetch_all(app.db.pool())
            .await
            .unwrap(),
        };
        found.extend(names.into_iter().map(|table| (schema.to_owned(), table)));
    }
    assert!(found.len() > 30, "every module's tables: {found:?}");
    found
}

/// Rows of `schema.table` holding `text`, as text or inside bytes.
async fn holding(app: &TestApp, schema: &str, table: &str, text: &str) -> i64 {
    let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
    match app.backend {
        // A row as text shows byte columns in hex.
        Backend::Postgres => sqlx::query_scalar(db::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {schema}.{table} t WHERE t::text LIKE '%' || $1 || '%' OR t::text LIKE '%' || $2 || '%'"
        )))
        .bind(text)
        .bind(hex)
        .fetch_one(app.db.pool())
        .await
        .unwrap(),
        Backend::Sqlite => {
            let columns = sqlx::query(db::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{table}', '{schema}')"
            )))
            .fetch_all(app.db.pool())
            .await
            .unwrap();
            let mut rows = 0;
            for column in columns {
                let column: String = column.try_get(0).unwrap();
                let count: i64 = sqlx::query_scalar(db::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {schema}.{table} WHERE instr(CAST(\"{column}\" AS BLOB), CAST($1 AS BLOB)) > 0"
                )))
                .bind(text)
                .fetch_one(app.db.pool())
                .await
                .unwrap();
                rows += count;
            }
            rows
        }
    }
}

async fn an_erased_customer_leaves_no_trace_in_any_module(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    let mut mall = app.mall(100.0).await;
    mall.customer = app
        .create("/api/customers", json!({"name": NAME, "smsNumber": NUMBER}))
        .await;
    mall.payment = app
        .create(
            "/api/payments",
            json!({"customerId": mall.customer, "amount": 100.0}),
        )
        .await;
    let order = app.checkout(&mall, 1).await;
    app.pick(&order).await;
    app.pay(&order).await;
    app.order_is(&order, "completed").await;
    let search = format!("/api/search/orders/{order}");
    app.eventually(&search, "/order/customerName", NAME).await;
    let notifications = format!("/api/notifications?customerId={}", mall.customer);
    app.eventually(&notifications, "/notifications/0/smsNumber", NUMBER)
        .await;
    let mut before = 0;
    for (schema, table) in tables(&app).await {
        before += holding(&app, &schema, &table, NAME).await;
    }
    assert!(before > 0, "the scan finds the name where it is kept");

    let customer = format!("/api/customers/{}", mall.customer);
    let (status, body) = app.json(Method::DELETE, &customer, Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.json(Method::GET, &customer, Value::Null).await;
    assert_eq!(status, 404);
    app.eventually(&search, "/order/customerName", "").await;
    app.eventually(&notifications, "/notifications/0/smsNumber", "")
        .await;

    let mut left = Vec::new();
    for (schema, table) in tables(&app).await {
        for personal in [NAME, NUMBER] {
            let rows = holding(&app, &schema, &table, personal).await;
            if rows > 0 {
                left.push(format!("{schema}.{table}: {rows} row(s) with {personal:?}"));
            }
        }
    }
    assert!(left.is_empty(), "the customer is still here: {left:#?}");
    // The order itself stays (the mall's record), under the customer's id only.
    app.order_is(&order, "completed").await;
}
