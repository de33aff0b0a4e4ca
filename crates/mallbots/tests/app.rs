//! The assembled app through `testkit::spawn_app`, on each backend.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use testkit::{Backend, spawn_app};

db::backend_tests!(
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
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(
            status != 405 && body["message"] != "Not Found",
            "{route}: {status} {body}"
        );
    }
}
