//! The microservices deployment (the book's chapter 11): each module in a `mallbots` process of
//! its own with its own PostgreSQL database, NATS JetStream between them, gRPC for the few
//! synchronous calls (`RPC_SERVICES`), and `mallbots gateway` in front. Every feature of the
//! `e2e` crate runs through the gateway; then every process must stop cleanly on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; a skip is said on stderr"
)]

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use db::{Backend, Target};

/// One running process, its addresses, and the last lines it logged (for a failure message).
struct Process {
    name: String,
    child: Child,
    http: String,
    grpc: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts `mallbots args…` with `env` and waits (30 s at most) for its start line.
fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mallbots"));
    for (key, _) in std::env::vars() {
        if ["PG_", "WEB_", "RPC_", "NATS_", "GATEWAY_"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
            || key == "MODULES"
        {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(args)
        .envs(env.iter().copied())
        .env("WEB_HOST", "127.0.0.1")
        .env("WEB_PORT", "0")
        .env("RPC_HOST", "127.0.0.1")
        .env("RPC_PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info,tower_http=warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let kept = Arc::clone(&log);
    // Drains the pipe for the process's whole life, so logging never blocks it.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let message = &entry["fields"]["message"];
            if message == "mallbots started" || message == "gateway started" {
                let field =
                    |key: &str| entry["fields"][key].as_str().unwrap_or_default().to_owned();
                let _ = started_tx.send((field("http"), field("grpc")));
            }
            let mut kept = kept.lock().unwrap();
            kept.push(line);
            if kept.len() > 50 {
                kept.remove(0);
            }
        }
    });
    let Ok((http, grpc)) = started_rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("{name} did not start: {:#?}", log.lock().unwrap());
    };
    Process {
        name: name.to_owned(),
        child,
        http,
        grpc,
        log,
    }
}

impl Process {
    /// SIGTERM, then waits (30 s at most) for the exit.
    fn stop(mut self) -> (String, ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log.lock().unwrap().clone();
                return (self.name.clone(), status, log);
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A failed test must not leave processes behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
