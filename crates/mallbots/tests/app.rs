//! The assembled app through `testkit::spawn_app`, on each backend.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use testkit::{Backend, spawn_app};

db::backend_tests!(an_app_without_modules_serves_health, the_app_stops_cleanly);

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
