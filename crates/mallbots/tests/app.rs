//! The assembled app through `testkit::spawn_app`, on each backend.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use db::Row as _;
use testkit::{Backend, spawn_app, spawn_app_with};

db::backend_tests!(
    consumers_are_shared_on_postgresql_unless_the_process_is_the_only_one,
    an_app_without_modules_serves_health,
    the_app_stops_cleanly,
    every_route_is_documented_and_every_documented_route_exists
);

async fn an_app_without_modules_serves_health(backend: Backend) {
    let app = spawn_app(&[], backend).await;
    assert_eq!(app.get("/liveness").await.status(), 200);
    let ready = app.get("/readiness").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["broker"], "ok");
    let missing = app.get("/api/stores").await;
    assert_eq!(missing.status(), 404);
}

async fn the_app_stops_cleanly(backend: Backend) {
    let app = spawn_app(&[], backend).await;
    app.stop().await.unwrap();
}

async fn every_route_is_documented_and_every_documented_route_exists(backend: Backend) {
    let app = spawn_app(
        &mallbots::MODULES.iter().map(|m| m.name).collect::<Vec<_>>(),
        backend,
    )
    .await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut documented = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut expected = vec![
        "POST /api/stores",
        "GET /api/stores",
        "GET /api/stores/participating",
        "GET /api/stores/{id}",
        "PUT /api/stores/{id}/participating",
        "DELETE /api/stores/{id}/participating",
        "PUT /api/stores/{id}/rebrand",
        "POST /api/stores/{id}/products",
        "GET /api/stores/{id}/products",
        "GET /api/stores/products/{id}",
        "DELETE /api/stores/products/{id}",
        "PUT /api/stores/products/{id}/rebrand",
        "PUT /api/stores/products/{id}/increasePrice",
        "PUT /api/stores/products/{id}/decreasePrice",
        "POST /api/customers",
        "GET /api/customers/{id}",
        "PUT /api/customers/{id}/enable",
        "PUT /api/customers/{id}/disable",
        "PUT /api/customers/{id}/change-sms",
        "POST /api/payments",
        "GET /api/payments/invoices/{id}",
        "PUT /api/payments/invoices/{id}/pay",
        "POST /api/baskets",
        "GET /api/baskets/{id}",
        "DELETE /api/baskets/{id}",
        "DELETE /api/customers/{id}",
        "PUT /api/baskets/{id}/checkout",
        "PUT /api/baskets/{id}/addItem",
        "PUT /api/baskets/{id}/removeItem",
        "POST /api/ordering",
        "GET /api/ordering/{id}",
        "DELETE /api/ordering/{id}",
        "POST /api/depot/shopping",
        "GET /api/depot/shopping",
        "POST /api/depot/shopping/{id}",
        "GET /api/depot/shopping/{id}",
        "PUT /api/depot/shopping/{id}/assign",
        "PUT /api/depot/shopping/{id}/complete",
        "GET /api/cosec/sagas/{id}",
        "GET /api/cosec/stuck-sagas",
        "GET /api/console/board",
        "GET /api/console/live",
        "GET /api/console/operations",
        "GET /api/console/orders/{id}",
        "POST /api/console/dead-letters/{module}/{consumer}/{id}/replay",
        "DELETE /api/console/dead-letters/{module}/{consumer}/{id}",
        "POST /api/search/orders",
        "GET /api/search/orders/{id}",
        "GET /api/notifications",
    ];
    expected.sort_unstable();
    assert_eq!(documented, expected);

    // Each documented route is routed: the router's own 404/405 never answers it.
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app.send(method, &path.replace("{id}", "x"), "{}").await;
        let status = response.status().as_u16();
        if path.ends_with("/live") {
            // An event stream: its body never ends.
            assert_eq!(status, 200, "{route}");
            continue;
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(
            status != 405 && body["message"] != "Not Found",
            "{route}: {status} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asyncapi_document_has_every_message_sent_and_received() {
    let (target, _database) = db::testing::fresh_target(Backend::Sqlite).await;
    let host = mallbots::start(
        host::Config::for_tests(target),
        &mallbots::select("all").unwrap(),
    )
    .await
    .unwrap();
    let receivers = host.receivers().to_vec();
    let api = testkit::Api::new(&format!("http://{}", host.http_addr()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(host.run(async {
        let _ = stopped.await;
    }));
    let (status, doc) = api
        .json(
            reqwest::Method::GET,
            "/asyncapi.json",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(
        (status, &doc["asyncapi"]),
        (200, &serde_json::json!("3.0.0"))
    );
    let resolve = |reference: &serde_json::Value| {
        let path = reference["$ref"].as_str().unwrap().trim_start_matches('#');
        // JSON pointers escape '/' only; names here have none.
        doc.pointer(path).cloned()
    };
    for spec in proto::CATALOG {
        let channel = &doc["channels"][spec.subject];
        assert_eq!(channel["address"], spec.subject);
        let message = resolve(&channel["messages"][spec.name])
            .unwrap_or_else(|| panic!("{} is not on {}", spec.name, spec.subject));
        assert_eq!(message["name"], spec.name);
        let send = format!("{}.send.{}", spec.producer.replace(' ', "-"), spec.name);
        assert_eq!(doc["operations"][&send]["action"], "send", "{send}");
        if spec.payload.is_some() {
            assert!(
                resolve(&message["payload"]).is_some(),
                "{}'s payload",
                spec.name
            );
        }
    }
    assert!(
        receivers.len() >= 15,
        "every module subscribed: {receivers:?}"
    );
    for receiver in &receivers {
        let operation =
            &doc["operations"][format!("{}.receive.{}", receiver.module, receiver.consumer)];
        assert_eq!(operation["action"], "receive", "{receiver:?}");
        assert_eq!(
            doc["channels"][&receiver.subject]["address"],
            receiver.subject.as_str()
        );
        let messages = operation["messages"].as_array().unwrap();
        assert!(!messages.is_empty(), "{receiver:?} receives nothing");
        for message in messages {
            assert!(
                resolve(message).is_some(),
                "{receiver:?}: {message} is not on its channel"
            );
        }
    }
    let created = &doc["components"]["schemas"]["storespb.StoreCreated"]["properties"];
    assert_eq!(created["location"]["type"], "string");
    let checked_out = &doc["components"]["schemas"]["basketspb.BasketCheckedOut"]["properties"];
    assert_eq!(checked_out["items"]["type"], "array");
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

/// On PostgreSQL a module's consumers are owned through leases its replicas share (ADR 23);
/// `CONSUMER_PARTITIONS=0` says the process is the only one: no leases, messages flow alike.
/// SQLite files belong to one process: never any.
async fn consumers_are_shared_on_postgresql_unless_the_process_is_the_only_one(backend: Backend) {
    for partitions in [1, 0] {
        let app = spawn_app_with(&["stores", "baskets"], backend, |config| {
            config.consumer_partitions = partitions;
        })
        .await;
        let count = |sql: &'static str| {
            let db = app.db.clone();
            async move {
                let row = sqlx::query(sql).fetch_one(db.pool()).await.unwrap();
                row.get::<i64, _>(0)
            }
        };
        let (status, _) = app
            .api
            .json(
                reqwest::Method::POST,
                "/api/stores",
                serde_json::json!({"name": "Shared", "location": "here"}),
            )
            .await;
        assert_eq!(status, 200);
        testkit::until(|| async {
            if count("SELECT COUNT(*) FROM baskets.stores_cache").await == 1 {
                Ok(())
            } else {
                Err("the store never reached the baskets module".to_owned())
            }
        })
        .await;
        let owned = count("SELECT COUNT(*) FROM baskets.consumer_owners WHERE owner <> ''").await;
        let shared = backend == Backend::Postgres && partitions == 1;
        assert_eq!(
            owned > 0,
            shared,
            "partitions {partitions} on {backend}: {owned} parts owned"
        );
    }
}
