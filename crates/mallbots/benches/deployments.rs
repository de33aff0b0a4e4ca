//! `cargo bench -p mallbots --bench deployments`: `busywork` against the real binary deployed
//! three ways — the monolith on the embedded backend, the monolith on PostgreSQL + JetStream,
//! and nine services behind the gateway on PostgreSQL + JetStream — each measured for
//! start-up, memory, latency at 10 orders/s and throughput flat out. PostgreSQL deployments
//! also count write transactions per order (transaction ids assigned), to set throughput
//! against the machine's commit rate. `scripts/bench` turns the JSON lines into BENCHMARKS.md.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on any error"
)]

#[path = "../tests/support/processes.rs"]
mod processes;

use std::time::{Duration, Instant};

use db::{Backend, Target};
use mallbots::busywork::{self, BusyworkArgs, Summary};
use processes::{Process, start};
use sqlx::Connection as _;

fn window() -> Duration {
    std::env::var("BENCH_WINDOW")
        .ok()
        .and_then(|w| host::parse_duration(&w).ok())
        .unwrap_or(Duration::from_secs(20))
}

struct Deployment {
    name: &'static str,
    processes: Vec<Process>,
    url: String,
    ready_ms: f64,
    postgres: bool,
    // Dropped last: databases and the stream outlive the processes.
    _guards: Option<processes::Guards>,
    _stream: Option<messaging::testing::StreamGuard>,
    _databases: Vec<db::testing::Guard>,
    _data: Option<tempfile::TempDir>,
}

async fn wait_ready(url: &str, started: Instant) -> f64 {
    let client = reqwest::Client::new();
    loop {
        if let Ok(answer) = client.get(format!("{url}/readiness")).send().await
            && answer.status().is_success()
        {
            return started.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} never got ready"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn postgres_url() -> (String, db::testing::Guard) {
    let (target, guard) = db::testing::fresh_target(Backend::Postgres).await;
    let Target::Postgres(url) = target else {
        unreachable!("a PostgreSQL target")
    };
    (url, guard)
}

async fn monolith(postgres: bool) -> Deployment {
    let mut databases = Vec::new();
    let (mut env, mut stream, mut data) = (Vec::new(), None, None);
    let (url_holder, nats, name);
    if postgres {
        let (url, guard) = postgres_url().await;
        databases.push(guard);
        url_holder = url;
        nats = messaging::testing::nats_url();
        name = messaging::testing::unique_stream();
        stream = Some(messaging::testing::StreamGuard::new(
            nats.clone(),
            name.clone(),
        ));
        env.extend([
            ("PG_CONN", url_holder.as_str()),
            ("NATS_URL", nats.as_str()),
            ("NATS_STREAM", name.as_str()),
        ]);
    } else {
        let dir = tempfile::tempdir().unwrap();
        url_holder = dir.path().to_string_lossy().into_owned();
        data = Some(dir);
        env.push(("DATA_DIR", url_holder.as_str()));
    }
    let started = Instant::now();
    let process = start("monolith", &[], &env);
    let url = format!("http://{}", process.http);
    let ready_ms = wait_ready(&url, started).await;
    Deployment {
        name: if postgres {
            "monolith, PostgreSQL + JetStream"
        } else {
            "monolith, embedded (SQLite)"
        },
        processes: vec![process],
        url,
        ready_ms,
        postgres,
        _guards: None,
        _stream: stream,
        _databases: databases,
        _data: data,
    }
}

async fn microservices() -> Deployment {
    let started = Instant::now();
    let mall = processes::microservices(&[]).await;
    let ready_ms = wait_ready(&mall.url, started).await;
    Deployment {
        name: "nine services + gateway, PostgreSQL + JetStream",
        url: mall.url.clone(),
        processes: mall.processes,
        ready_ms,
        postgres: true,
        _guards: Some(mall.guards),
        _stream: None,
        _databases: Vec::new(),
        _data: None,
    }
}

/// Transaction ids assigned so far, cluster-wide: only writing transactions take one.
async fn write_transactions() -> i64 {
    let mut conn = sqlx::AnyConnection::connect(&db::testing::postgres_server())
        .await
        .unwrap();
    let row: (String,) = sqlx::query_as("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    row.0.parse().unwrap()
}

fn memory_kib(d: &Deployment) -> (u64, u64) {
    d.processes
        .iter()
        .map(Process::memory)
        .fold((0, 0), |(rss, peak), (r, p)| (rss + r, peak + p))
}

async fn busywork(url: &str, clients: u32, rate: f64, duration: Duration) -> Summary {
    let args = BusyworkArgs {
        url: url.to_owned(),
        clients,
        duration,
        orders: 0,
        rate,
        seed: 1,
        json: true,
    };
    busywork::run(&args).await.unwrap()
}

async fn measure(deployment: Deployment) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_kib, _) = memory_kib(&deployment);
    let window = window();
    let latency = busywork(&deployment.url, 4, 10.0, window).await;
    let before = if deployment.postgres {
        write_transactions().await
    } else {
        0
    };
    let throughput = busywork(&deployment.url, 16, 0.0, window).await;
    let writes = if deployment.postgres {
        (write_transactions().await - before - 1) as f64
    } else {
        0.0
    };
    let (_, peak_kib) = memory_kib(&deployment);
    let writes_per_order = writes / throughput.orders_completed.max(1) as f64;
    println!(
        "{:<48} ready {:>6.0} ms  idle {:>6.1} MiB  peak {:>6.1} MiB  @10/s approved p50 {:>6.1} p99 {:>6.1} ms  flat out {:>6.1} orders/s ({} lost, {} errors){}",
        deployment.name,
        deployment.ready_ms,
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        latency.checkout_to_approved_ms.p50,
        latency.checkout_to_approved_ms.p99,
        throughput.orders_completed_per_second,
        latency.orders_lost + throughput.orders_lost,
        latency.errors.values().sum::<u64>() + throughput.errors.values().sum::<u64>(),
        if deployment.postgres {
            format!("  {writes_per_order:.1} write tx/order")
        } else {
            String::new()
        }
    );
    db::testing::record_bench(serde_json::json!({
        "bench": "deployment",
        "deployment": deployment.name,
        "processes": deployment.processes.len(),
        "ready_ms": deployment.ready_ms,
        "idle_mib": idle_kib as f64 / 1024.0,
        "peak_mib": peak_kib as f64 / 1024.0,
        "at_10": latency,
        "flat_out": throughput,
        "write_tx_per_order": deployment.postgres.then_some(writes_per_order),
    }));
    for process in deployment.processes {
        let (name, status, log) = process.stop();
        assert!(status.success(), "{name} exited with {status}: {log:#?}");
    }
}

#[tokio::main]
async fn main() {
    host::install_crypto_provider();
    sqlx::any::install_default_drivers();
    println!(
        "busywork against the release binary; {} s per run (BENCH_WINDOW)",
        window().as_secs()
    );
    measure(monolith(false).await).await;
    let reachable = messaging::testing::postgres_and_nats_answer().await;
    if !reachable {
        println!("PostgreSQL + JetStream not measured: PostgreSQL or NATS does not answer");
        return;
    }
    measure(monolith(true).await).await;
    measure(microservices().await).await;
}
