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

#[path = "support/cluster.rs"]
mod cluster;

use std::{
    collections::{BTreeMap, HashMap},
    process::{Command, Stdio},
    time::Duration,
};

use cluster::{Cluster, modules};
use db::{Backend, Row as _};
use futures::StreamExt as _;

const ORDERS: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_a_jetstream_cluster_lose_and_double_nothing_through_kills() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let mut cluster = Cluster::start(2);
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
    for module in modules() {
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
