//! Scale-out (issue 16), started as an operator would — `scripts/microservices --replicas 2
//! --nats-cluster 3`: two replicas of every module sharing their consumers, a three-node
//! JetStream cluster keeping the stream on all three. 300 orders go from basket to `completed`
//! while a replica of ordering, cosec, depot and payments is `kill -9`ed and a NATS node is
//! stopped and started again. Then, from what is stored: none lost, none doubled (one shopping
//! list, one invoice per order), and every consumer handled each aggregate's messages in the
//! order of the stream.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; progress is said on stderr"
)]

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use db::{Backend, Row as _};
use futures::StreamExt as _;

const ORDERS: u64 = 300;
const MODULES: [&str; 10] = [
    "stores",
    "customers",
    "payments",
    "baskets",
    "ordering",
    "depot",
    "cosec",
    "search",
    "notifications",
    "console",
];

/// The running cluster: the script (a process group of its own) and what it keeps.
struct Cluster {
    script: Child,
    data: tempfile::TempDir,
    base: u16,
    prefix: String,
    /// NATS nodes this test started again (the script's own ones it stops itself).
    restarted: Vec<Child>,
}

impl Cluster {
    fn start() -> Cluster {
        let data = tempfile::tempdir().unwrap();
        let base = free_block();
        let prefix = format!("cluster_{:08x}_", rand::random::<u32>());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/microservices");
        let mut child = Command::new(script)
            .args(["--replicas", "2", "--nats-cluster", "3", "--base-port"])
            .arg(base.to_string())
            .arg("--data")
            .arg(data.path())
            .args(["--db-prefix", &prefix])
            .env("MALLBOTS_BIN", env!("CARGO_BIN_EXE_mallbots"))
            .env("PG_SERVER", server())
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info,tower_http=warn")
            .env_remove("NATS_URL")
            .env_remove("MODULES")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("{line}");
                if line.starts_with("microservices: ready") {
                    let _ = ready_tx.send(());
                }
            }
        });
        let cluster = Cluster {
            script: child,
            data,
            base,
            prefix,
            restarted: Vec::new(),
        };
        if ready_rx.recv_timeout(Duration::from_secs(180)).is_err() {
            panic!("the cluster did not start: {}", cluster.logs_tail());
        }
        cluster
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.base)
    }

    fn nats(&self) -> String {
        (1..=3)
            .map(|k| format!("nats://127.0.0.1:{}", u32::from(self.base) + 1500 + k))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn pid(&self, name: &str) -> String {
        std::fs::read_to_string(self.data.path().join(format!("{name}.pid")))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn signal(&self, signal: &str, name: &str) {
        eprintln!("cluster test: kill -{signal} {name}");
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid(name)])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {name}");
    }

    /// Starts NATS node `k` again from the configuration the script wrote.
    fn restart_nats(&mut self, k: u32) {
        eprintln!("cluster test: starting nats-{k} again");
        let conf = self.data.path().join(format!("nats-{k}.conf"));
        let log =
            std::fs::File::create(self.data.path().join(format!("nats-{k}-again.log"))).unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.restarted.push(child);
    }

    fn database(&self, module: &str) -> String {
        format!("{}/{}{module}", server(), self.prefix)
    }

    fn logs_tail(&self) -> String {
        let mut tail = String::new();
        for entry in std::fs::read_dir(self.data.path()).unwrap().flatten() {
            let path: PathBuf = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let last: Vec<&str> = text.lines().rev().take(5).collect();
                tail += &format!("\n== {}\n{}", path.display(), last.join("\n"));
            }
        }
        tail
    }

    /// SIGTERM to the script, which stops every process; it must report a clean stop.
    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.script.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.script.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the cluster ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "the processes did not stop cleanly: {}",
            self.logs_tail()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.restarted {
            let _ = node.kill();
            let _ = node.wait();
        }
        if self.script.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.script.id().to_string()])
                .status();
            let _ = self.script.wait();
        }
        for module in MODULES {
            let _ = Command::new("psql")
                .arg(format!("{}/postgres", server()))
                .args([
                    "-qc",
                    &format!(
                        "DROP DATABASE IF EXISTS {}{module} WITH (FORCE)",
                        self.prefix
                    ),
                ])
                .status();
        }
    }
}

/// The test PostgreSQL server, without a database.
fn server() -> String {
    let url = db::testing::postgres_server();
    let url = url
        .split_once('?')
        .map_or(url.as_str(), |(base, _)| base)
        .to_owned();
    url.rsplit_once('/')
        .map_or(url.clone(), |(server, _)| server.to_owned())
}

/// A base port whose block (gateway, replicas, NATS nodes) is free now.
fn free_block() -> u16 {
    let free = |port: u32| {
        u16::try_from(port)
            .ok()
            .is_some_and(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
    };
    for _ in 0..50 {
        let base = 20_000 + rand::random_range(0..400) * 100;
        let ports = (0..=30)
            .chain(920..=950)
            .chain(1500..=1503)
            .chain(1600..=1603)
            .chain(1700..=1703);
        if ports.map(|offset| base + offset).all(free) {
            return u16::try_from(base).unwrap();
        }
    }
    panic!("no free block of ports for the cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_a_jetstream_cluster_lose_and_double_nothing_through_kills() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let mut cluster = Cluster::start();
    let busywork = Command::new(env!("CARGO_BIN_EXE_mallbots"))
        .args([
            "busywork",
            "--url",
            &cluster.url(),
            "--clients",
            "8",
            "--duration",
            "15m",
            "--retry",
            "--json",
        ])
        .args(["--orders", &ORDERS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Faults while orders flow: a replica of each of four modules killed, a NATS node stopped
    // and started again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (module, replica) in [("ordering", 0), ("cosec", 1), ("depot", 0), ("payments", 1)] {
        cluster.signal("KILL", &format!("{module}-{replica}"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    cluster.signal("TERM", "nats-2");
    tokio::time::sleep(Duration::from_secs(6)).await;
    cluster.restart_nats(2);

    let output = tokio::task::spawn_blocking(move || busywork.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "busywork's summary: {e}: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    eprintln!("cluster test: {summary}");
    assert_eq!(
        summary["ordersCompleted"], ORDERS,
        "every order completed: {summary}"
    );
    assert_eq!(summary["ordersLost"], 0, "{summary}");

    let depot = one_per_order(&cluster.database("depot"), "depot.shopping_lists").await;
    let invoices = one_per_order(&cluster.database("payments"), "payments.invoices").await;
    assert_eq!(
        (depot, invoices),
        (ORDERS, ORDERS),
        "one shopping list and one invoice per order"
    );

    let stream = stream_positions(&cluster.nats()).await;
    let mut checked = 0;
    for module in MODULES {
        checked += handled_in_stream_order(&cluster.database(module), module, &stream).await;
    }
    assert!(
        checked > (ORDERS * 10) as usize,
        "the inboxes hold what was handled: {checked}"
    );
    cluster.stop();
}

/// Orders with a row in `table`, checking none has two.
async fn one_per_order(url: &str, table: &str) -> u64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let doubled: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT order_id FROM {table} GROUP BY order_id HAVING COUNT(*) > 1"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        doubled.is_empty(),
        "{table}: orders with two rows: {doubled:?}"
    );
    let orders: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(DISTINCT order_id) FROM {table}"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    u64::try_from(orders).unwrap()
}

/// Every message of the stream: its id → (stream sequence, aggregate it is about).
async fn stream_positions(nats: &str) -> HashMap<String, (u64, String)> {
    let servers: Vec<async_nats::ServerAddr> =
        nats.split(',').map(|u| u.parse().unwrap()).collect();
    let client = async_nats::connect(servers).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream("mallbots").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut positions = HashMap::new();
    let reads = futures::stream::iter(1..=last)
        .map(|seq| {
            let stream = stream.clone();
            async move { (seq, stream.get_raw_message(seq).await) }
        })
        .buffer_unordered(64);
    let read: Vec<_> = reads.collect().await;
    for (seq, message) in read {
        let Ok(message) = message else { continue };
        let Ok(envelope) = messaging::Envelope::decode(&message.payload) else {
            continue;
        };
        let key = envelope
            .metadata
            .get(messaging::AGGREGATE_ID_KEY)
            .cloned()
            .unwrap_or_default();
        positions.insert(envelope.id, (seq, key));
    }
    positions
}

/// Checks that each consumer of `module` handled each aggregate's messages in stream order
/// (its inbox, by when each was handled); how many it checked.
async fn handled_in_stream_order(
    url: &str,
    module: &str,
    stream: &HashMap<String, (u64, String)>,
) -> usize {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT consumer, id, received_at FROM {module}.inbox"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    // (consumer, aggregate) → (handled at, stream sequence) of each message.
    let mut handled: BTreeMap<(String, String), Vec<(i64, u64)>> = BTreeMap::new();
    for row in &rows {
        let (consumer, id, at): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        let Some((seq, key)) = stream.get(&id) else {
            panic!("{module}: {consumer} handled {id}, which the stream does not hold");
        };
        if key.is_empty() {
            continue;
        }
        handled
            .entry((consumer, key.clone()))
            .or_default()
            .push((at, *seq));
    }
    for ((consumer, key), mut messages) in handled {
        messages.sort_unstable();
        let seqs: Vec<u64> = messages.iter().map(|(_, seq)| *seq).collect();
        assert!(
            seqs.is_sorted(),
            "{module}: {consumer} handled {key}'s messages out of stream order: {messages:?}"
        );
    }
    rows.len()
}
