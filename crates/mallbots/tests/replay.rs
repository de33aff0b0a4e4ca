//! `mallbots replay` and `mallbots dlq replay`, run as an operator would beside a running
//! mall, on each backend: a read model damaged by hand is rebuilt to exactly what it was, and
//! nothing downstream hears of it; messages dead-lettered while a handler was broken take
//! effect exactly once when replayed after the fix.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;

use db::{AssertSqlSafe, Row as _};
use testkit::{Backend, TestApp, spawn_app_with};

db::backend_tests!(
    replay_search_rebuilds_the_same_model,
    replay_mall_and_catalog_rebuild_the_same_rows,
    dead_letters_replayed_after_the_fix_take_effect_once,
    replay_caches_rebuilds_baskets_and_depot_copies,
);

/// The mall, and the settings a second process needs to open its database.
async fn mall(backend: Backend) -> (TestApp, Vec<(&'static str, String)>) {
    mall_with(backend, false).await
}

/// The mall and the settings that reach its database; `counted`: alone in this test binary
/// while it runs, so its `/metrics` count only what it did.
async fn mall_with(backend: Backend, counted: bool) -> (TestApp, Vec<(&'static str, String)>) {
    let mut settings = Vec::new();
    let data = tempfile::tempdir().unwrap().keep();
    let configure = |config: &mut host::Config| match &config.pg_conn {
        Some(conn) => settings.push(("PG_CONN", conn.clone())),
        None => {
            config.data_dir = data.clone();
            settings.push(("DATA_DIR", data.display().to_string()));
        }
    };
    let app = if counted {
        testkit::spawn_app_counted(&["all"], backend, configure).await
    } else {
        spawn_app_with(&["all"], backend, configure).await
    };
    (app, settings)
}

fn mallbots(settings: &[(&str, String)], args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mallbots"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PG_") || key.starts_with("NATS_") || key == "MODULES" {
            command.env_remove(key);
        }
    }
    let output = command
        .args(args)
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .env("LOG_LEVEL", "error")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until search shows `order` with `status`.
async fn search_shows(app: &TestApp, order: &str, status: &str) {
    app.eventually(
        &format!("/api/search/orders/{order}"),
        "/order/status",
        status,
    )
    .await;
}

/// Every row of `sql`'s single text column.
async fn rows(app: &TestApp, sql: &str) -> Vec<String> {
    sqlx::query(AssertSqlSafe(sql.to_owned()))
        .fetch_all(app.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

async fn search_model(app: &TestApp) -> Vec<String> {
    let mut model = rows(
        app,
        "SELECT order_id || '|' || customer_id || '|' || customer_name || '|' || items || '|' ||
                CAST(total AS TEXT) || '|' || status || '|' || CAST(created_at AS TEXT) || '|' || CAST(updated_at AS TEXT)
         FROM search.orders ORDER BY order_id",
    )
    .await;
    model.extend(
        rows(
            app,
            "SELECT order_id || '|' || store_id FROM search.order_stores ORDER BY 1",
        )
        .await,
    );
    model.extend(
        rows(
            app,
            "SELECT order_id || '|' || product_id FROM search.order_products ORDER BY 1",
        )
        .await,
    );
    model.extend(
        rows(
            app,
            "SELECT id || '|' || name FROM search.customers_cache ORDER BY 1",
        )
        .await,
    );
    model
}

async fn replay_search_rebuilds_the_same_model(backend: Backend) {
    let (app, settings) = mall(backend).await;
    let shop = app.mall(100.0).await;
    let first = app.checkout(&shop, 1).await;
    let second = app.checkout(&shop, 2).await;
    for order in [&first, &second] {
        app.order_is(order, "approved").await;
        search_shows(&app, order, "approved").await;
    }
    // The second one further along: its bot picked everything.
    app.pick(&second).await;
    search_shows(&app, &second, "ready").await;
    let before = search_model(&app).await;
    assert!(before.len() >= 6, "{before:#?}");

    // Damage: one order forgotten, the other's status wrong.
    sqlx::query("DELETE FROM search.orders WHERE order_id = $1")
        .bind(&first)
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE search.orders SET status = 'lost' WHERE order_id = $1")
        .bind(&second)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_ne!(search_model(&app).await, before);

    let (ok, stdout, stderr) = mallbots(&settings, &["replay", "search"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("search-orders: rebuilt"), "{stdout}");
    assert_eq!(search_model(&app).await, before);
    // The rebuild re-read the stream; it staged nothing for anyone else.
    let outbox = rows(&app, "SELECT CAST(COUNT(*) AS TEXT) FROM search.outbox").await;
    assert_eq!(outbox, ["0"]);

    // The mall keeps working on the rebuilt model.
    let third = app.checkout(&shop, 1).await;
    search_shows(&app, &third, "approved").await;
}

async fn replay_mall_and_catalog_rebuild_the_same_rows(backend: Backend) {
    let (app, settings) = mall(backend).await;
    let shop = app.mall(100.0).await;
    let other = app
        .create(
            "/api/stores",
            serde_json::json!({"name": "Other", "location": "Upstairs"}),
        )
        .await;
    for path in [
        format!("/api/stores/{other}/participating"),
        format!("/api/stores/products/{}/increasePrice", shop.product),
    ] {
        let body = serde_json::json!({"price": 12.5});
        let (status, answer) = app.json(reqwest::Method::PUT, &path, body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let stores = "SELECT id || '|' || name || '|' || location || '|' || CAST(participating AS TEXT) || '|' ||
                         CAST(created_at AS TEXT) || '|' || CAST(updated_at AS TEXT) FROM stores.stores ORDER BY id";
    let products = "SELECT id || '|' || store_id || '|' || name || '|' || description || '|' || sku || '|' ||
                           CAST(price AS TEXT) || '|' || CAST(updated_at AS TEXT) FROM stores.products ORDER BY id";
    let before = (rows(&app, stores).await, rows(&app, products).await);
    assert_eq!((before.0.len(), before.1.len()), (2, 1), "{before:#?}");
    let events = rows(&app, "SELECT CAST(COUNT(*) AS TEXT) FROM stores.outbox").await;

    sqlx::query("DELETE FROM stores.stores WHERE id = $1")
        .bind(&other)
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE stores.products SET price = 0")
        .execute(app.db.pool())
        .await
        .unwrap();

    let (ok, stdout, stderr) = mallbots(&settings, &["replay", "mall"]);
    assert!(
        ok && stdout.contains("mall rebuilt from"),
        "{stdout}{stderr}"
    );
    let (ok, stdout, stderr) = mallbots(&settings, &["replay", "catalog"]);
    assert!(
        ok && stdout.contains("catalog rebuilt from"),
        "{stdout}{stderr}"
    );
    assert_eq!(
        (rows(&app, stores).await, rows(&app, products).await),
        before
    );
    // No integration event was staged again.
    assert_eq!(
        rows(&app, "SELECT CAST(COUNT(*) AS TEXT) FROM stores.outbox").await,
        events
    );

    let (ok, _, stderr) = mallbots(&settings, &["replay", "everything"]);
    assert!(!ok);
    assert!(stderr.contains("invalid value 'everything'"), "{stderr}");
}

async fn dead_letters_replayed_after_the_fix_take_effect_once(backend: Backend) {
    let (app, settings) = mall_with(backend, true).await;
    let shop = app.mall(100.0).await;
    // The fault: search's orders table is gone, so its handler fails on every attempt
    // (transiently: retried with back-off, then dead-lettered). Nothing else is affected.
    // The recorder is the process's: counts are read as changes from here (no other app of
    // this test binary runs meanwhile).
    let counts = || async {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        ["messages_dead_lettered_total", "messages_handled_total"].map(|family| {
            let series = format!(
                "{family}{{module=\"search\",consumer=\"search-orders\",name=\"ordersapi.OrderCreated\"}} "
            );
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(&series))
                .map_or(0, |n| n.parse::<u64>().unwrap())
        })
    };
    let before = counts().await;
    sqlx::query("ALTER TABLE search.orders RENAME TO orders_offline")
        .execute(app.db.pool())
        .await
        .unwrap();
    let order = app.checkout(&shop, 1).await;
    app.order_is(&order, "approved").await;
    let dead = "SELECT id || ' ' || name FROM search.dead_letters WHERE consumer = 'search-orders' ORDER BY dead_at";
    let letters = testkit::until(|| async {
        let letters = rows(&app, dead).await;
        if letters.len() == 2 {
            Ok(letters)
        } else {
            Err(format!("dead letters so far: {letters:?}"))
        }
    })
    .await;
    let names: Vec<&str> = letters
        .iter()
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(names, ["ordersapi.OrderCreated", "ordersapi.OrderApproved"]);
    let (ok, listed, stderr) = mallbots(&settings, &["dlq", "list"]);
    assert!(ok, "{stderr}");
    assert!(
        listed.contains("relation") || listed.contains("no such table"),
        "{listed}"
    );

    // The fix, then each message replayed, in order.
    sqlx::query("ALTER TABLE search.orders_offline RENAME TO orders")
        .execute(app.db.pool())
        .await
        .unwrap();
    for letter in &letters {
        let id = letter.split_once(' ').unwrap().0;
        let (ok, _, stderr) =
            mallbots(&settings, &["dlq", "replay", "search", "search-orders", id]);
        assert!(ok, "{stderr}");
        // The running module replays it within a second; the next one needs it applied.
        testkit::until(|| async {
            let left = rows(&app, dead).await;
            if left.iter().any(|l| l == letter) {
                Err(format!("{letter} not replayed yet"))
            } else {
                Ok(())
            }
        })
        .await;
    }
    search_shows(&app, &order, "approved").await;
    let once = format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM search.order_products WHERE order_id = '{order}'"
    );
    assert_eq!(rows(&app, &once).await, ["1"]);
    // /metrics tells the same story: dead-lettered once, then handled once by the replay.
    let after = counts().await;
    assert_eq!(
        [after[0] - before[0], after[1] - before[1]],
        [1, 1],
        "OrderCreated dead-lettered, handled"
    );

    // A second replay finds nothing: the effect cannot happen twice.
    let id = letters[0].split_once(' ').unwrap().0;
    let (ok, _, stderr) = mallbots(&settings, &["dlq", "replay", "search", "search-orders", id]);
    assert!(!ok);
    assert!(stderr.contains(&format!("no dead letter {id}")), "{stderr}");
    let inbox = format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM search.inbox WHERE consumer = 'search-orders' AND id = '{id}'"
    );
    assert_eq!(rows(&app, &inbox).await, ["1"]);
}

async fn replay_caches_rebuilds_baskets_and_depot_copies(backend: Backend) {
    let (app, settings) = mall(backend).await;
    let shop = app.mall(100.0).await;
    let (status, body) = app
        .json(
            reqwest::Method::PUT,
            &format!("/api/stores/products/{}/rebrand", shop.product),
            serde_json::json!({"name": "Product XYZ", "description": "Renamed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let caches = "SELECT 'b|' || id || '|' || name FROM baskets.stores_cache
                  UNION ALL SELECT 'b|' || id || '|' || name || '|' || CAST(price AS TEXT) FROM baskets.products_cache
                  UNION ALL SELECT 'd|' || id || '|' || name || '|' || location FROM depot.stores_cache
                  UNION ALL SELECT 'd|' || id || '|' || name FROM depot.products_cache ORDER BY 1";
    let before = testkit::until(|| async {
        let rows = rows(&app, caches).await;
        if rows.len() == 4 && rows.iter().filter(|r| r.contains("Product XYZ")).count() == 2 {
            Ok(rows)
        } else {
            Err(format!("caches not filled yet: {rows:?}"))
        }
    })
    .await;
    for damage in [
        "DELETE FROM baskets.products_cache",
        "UPDATE depot.stores_cache SET name = 'stale'",
    ] {
        sqlx::query(damage).execute(app.db.pool()).await.unwrap();
    }

    let (ok, stdout, stderr) = mallbots(&settings, &["replay", "caches"]);
    assert!(ok, "{stderr}");
    for consumer in [
        "baskets-stores",
        "baskets-products",
        "depot-stores",
        "depot-products",
    ] {
        assert!(stdout.contains(&format!("{consumer}: rebuilt")), "{stdout}");
    }
    assert_eq!(rows(&app, caches).await, before);
}

#[test]
fn replay_says_when_no_process_runs_the_module() {
    let data = tempfile::tempdir().unwrap();
    let settings = [("DATA_DIR", data.path().display().to_string())];
    let (ok, _, stderr) = mallbots(&settings, &["migrate"]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = mallbots(&settings, &["replay", "search", "--timeout", "300ms"]);
    assert!(!ok);
    assert!(
        stderr.contains("not rebuilt after 300ms: is a process running the search module?"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = mallbots(&settings, &["replay", "search", "--no-wait"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("rebuild of search-orders"), "{stdout}");
}
