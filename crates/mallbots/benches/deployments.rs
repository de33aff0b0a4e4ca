//! `cargo bench -p mallbots --bench deployments`: `busywork` against the real binary deployed
//! four ways — the monolith on the embedded backend, the monolith on PostgreSQL + JetStream,
//! nine services behind the gateway on PostgreSQL + JetStream, and two replicas of each on a
//! three-node JetStream cluster — each measured for
//! start-up, memory, latency at 10 orders/s and throughput flat out. PostgreSQL deployments
//! also count write transactions per order (commit records in the WAL), to set throughput
//! against the machine's commit rate. `scripts/bench` turns the JSON lines into BENCHMARKS.md.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on any error"
)]

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "../tests/support/processes.rs"]
mod processes;

use std::time::{Duration, Instant};

use db::{Backend, Target};
use mallbots::busywork::{self, BusyworkArgs, Summary};
use processes::{Process, memory_of, start};
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
    /// Replicas on a JetStream cluster, started by scripts/microservices.
    cluster: Option<cluster::Cluster>,
}

impl Deployment {
    /// Every process of the deployment (not its servers).
    fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.processes.iter().map(|p| p.child.id()).collect();
        pids.extend(self.cluster.iter().flat_map(cluster::Cluster::pids));
        pids
    }
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
        cluster: None,
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
        cluster: None,
    }
}

/// Two replicas of every module on a three-node JetStream cluster (`scripts/microservices
/// --replicas 2 --nats-cluster 3`).
async fn replicas() -> Deployment {
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(|| cluster::Cluster::start(2))
        .await
        .unwrap();
    let url = cluster.url();
    let ready_ms = wait_ready(&url, started).await;
    Deployment {
        name: "2 replicas per module + gateway, 3-node JetStream",
        url,
        processes: Vec::new(),
        ready_ms,
        postgres: true,
        _guards: None,
        _stream: None,
        _databases: Vec::new(),
        _data: None,
        cluster: Some(cluster),
    }
}

/// Where the write-ahead log is now, cluster-wide: writing transactions are counted as the
/// commit records written since (`pg_walinspect`). Transaction ids would also count each
/// savepoint that wrote, and a batch of messages takes one per message.
async fn wal_position() -> String {
    let mut conn = sqlx::AnyConnection::connect(&db::testing::postgres_server())
        .await
        .unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .execute(&mut conn)
        .await
        .unwrap();
    let row: (String,) = sqlx::query_as("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    row.0
}

/// Writing transactions committed since `from` (a [`wal_position`]).
async fn commits_since(from: &str) -> i64 {
    let mut conn = sqlx::AnyConnection::connect(&db::testing::postgres_server())
        .await
        .unwrap();
    let row: (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM pg_get_wal_stats(CAST($1 AS pg_lsn), pg_current_wal_lsn(), true)
         WHERE \"resource_manager/record_type\" = 'Transaction/COMMIT'",
    )
    .bind(from)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    row.0
}

/// CPU seconds spent so far by the processes `pick` chooses by pid and command name
/// (`/proc/<pid>/stat`: user + system time).
fn cpu_seconds(pick: impl Fn(u32, &str) -> bool) -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    let mut total = 0_u64;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !pick(pid, &stat[open + 1..close]) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let time = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += time(11) + time(12);
    }
    total as f64 / ticks
}

/// CPU seconds so far by who spends them: the deployment's processes, PostgreSQL, NATS and
/// the load generator (this process).
fn cpu_by_process(d: &Deployment) -> [(&'static str, f64); 4] {
    let ours = d.pids();
    let me = std::process::id();
    [
        ("mallbots", cpu_seconds(|pid, _| ours.contains(&pid))),
        ("PostgreSQL", cpu_seconds(|_, comm| comm == "postgres")),
        ("nats-server", cpu_seconds(|_, comm| comm == "nats-server")),
        ("busywork", cpu_seconds(|pid, _| pid == me)),
    ]
}

fn memory_kib(d: &Deployment) -> (u64, u64) {
    d.pids()
        .into_iter()
        .map(memory_of)
        .fold((0, 0), |(rss, peak), (r, p)| (rss + r, peak + p))
}

async fn busywork(url: &str, clients: u32, rate: f64, duration: Duration) -> Summary {
    let args = BusyworkArgs {
        token: None,
        url: url.to_owned(),
        clients,
        duration,
        orders: 0,
        rate,
        seed: 1,
        json: true,
        retry: false,
    };
    busywork::run(&args).await.unwrap()
}

async fn measure(deployment: Deployment) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_kib, _) = memory_kib(&deployment);
    let window = window();
    let latency = busywork(&deployment.url, 4, 10.0, window).await;
    let before = if deployment.postgres {
        Some(wal_position().await)
    } else {
        None
    };
    let cpu_before = cpu_by_process(&deployment);
    let throughput = busywork(&deployment.url, 16, 0.0, window).await;
    let cpu_after = cpu_by_process(&deployment);
    let orders = throughput.orders_completed.max(1) as f64;
    let cpu_ms_per_order: serde_json::Map<String, serde_json::Value> = cpu_before
        .iter()
        .zip(&cpu_after)
        .filter(|((name, _), _)| {
            deployment.postgres || !matches!(*name, "PostgreSQL" | "nats-server")
        })
        .map(|((name, before), (_, after))| {
            (
                (*name).to_owned(),
                serde_json::json!(1000.0 * (after - before) / orders),
            )
        })
        .collect();
    let writes = match &before {
        Some(from) => commits_since(from).await as f64,
        None => 0.0,
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
        "processes": deployment.pids().len(),
        "ready_ms": deployment.ready_ms,
        "idle_mib": idle_kib as f64 / 1024.0,
        "peak_mib": peak_kib as f64 / 1024.0,
        "at_10": latency,
        "flat_out": throughput,
        "write_tx_per_order": deployment.postgres.then_some(writes_per_order),
        "cpu_ms_per_order": cpu_ms_per_order,
    }));
    let Deployment {
        processes, cluster, ..
    } = deployment;
    for process in processes {
        let (name, status, log) = process.stop();
        assert!(status.success(), "{name} exited with {status}: {log:#?}");
    }
    if let Some(cluster) = cluster {
        cluster.stop();
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
    measure(replicas().await).await;
}
