//! The microservices deployment (the book's chapter 11): each module in a `mallbots` process of
//! its own with its own PostgreSQL database, NATS JetStream between them, gRPC for the few
//! synchronous calls (`RPC_SERVICES`), and `mallbots gateway` in front. Every feature of the
//! `e2e` crate runs through the gateway; then every process must stop cleanly on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; a skip is said on stderr"
)]

#[path = "support/processes.rs"]
mod processes;

use std::time::{Duration, Instant};

use db::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_services_behind_a_gateway_keep_every_feature() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let mall = processes::microservices().await;
    let api = testkit::Api::new(&mall.url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api
            .json(reqwest::Method::GET, "/readiness", serde_json::Value::Null)
            .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never got ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = api
        .json(
            reqwest::Method::GET,
            "/api/nowhere",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!((status, &body["code"]), (404, &serde_json::json!(5)));

    e2e::run(api, "nine services behind the gateway").await;

    let processes::Microservices {
        processes,
        guards: _guards,
        ..
    } = mall;
    for process in processes.into_iter().rev() {
        let (name, status, log) = process.stop();
        assert!(status.success(), "{name} exited with {status}: {log:#?}");
    }
}
