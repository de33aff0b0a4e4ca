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

use db::{Backend, Target};
use processes::{Process, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_services_behind_a_gateway_keep_every_feature() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let nats = messaging::testing::nats_url();
    let stream = messaging::testing::unique_stream();
    let _stream = messaging::testing::StreamGuard::new(nats.clone(), stream.clone());
    let mut databases = Vec::new();
    let mut services: Vec<Process> = Vec::new();
    // The gRPC providers first: the others are told where they are.
    let (providers, consumers): (Vec<_>, Vec<_>) = mallbots::MODULES
        .iter()
        .partition(|m| ["stores", "customers", "payments"].contains(&m.name));
    let mut rpc_services = String::new();
    for module in providers.iter().chain(&consumers) {
        let (target, guard) = db::testing::fresh_target(Backend::Postgres).await;
        databases.push(guard);
        let Target::Postgres(url) = target else {
            unreachable!("a PostgreSQL target")
        };
        let env = [
            ("MODULES", module.name),
            ("PG_CONN", url.as_str()),
            ("NATS_URL", nats.as_str()),
            ("NATS_STREAM", stream.as_str()),
            ("RPC_SERVICES", rpc_services.as_str()),
            ("DB_MAX_CONNECTIONS", "4"),
        ];
        let service = start(module.name, &[], &env);
        if providers.iter().any(|p| p.name == module.name) {
            let entry = format!("{}={}", module.name.to_uppercase(), service.grpc);
            rpc_services = [rpc_services, entry]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(",");
        }
        services.push(service);
    }
    let upstreams = services
        .iter()
        .map(|s| format!("{}=http://{}", s.name, s.http))
        .collect::<Vec<_>>()
        .join(",");
    let gateway = start(
        "gateway",
        &["gateway"],
        &[("GATEWAY_UPSTREAMS", &upstreams)],
    );

    let api = testkit::Api::new(&format!("http://{}", gateway.http));
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

    for process in std::iter::once(gateway).chain(services) {
        let (name, status, log) = process.stop();
        assert!(status.success(), "{name} exited with {status}: {log:#?}");
    }
}
