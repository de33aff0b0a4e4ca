//! `cargo bench -p messaging`: the messaging path against the broker's own limits, on SQLite +
//! the embedded broker and on PostgreSQL + JetStream (when `MALLBOTS_TEST_PG` and
//! `MALLBOTS_TEST_NATS` answer):
//! - raw broker publish rate (one ack awaited at a time, and 256 in flight);
//! - outbox relay throughput (staged rows → broker acks → rows marked);
//! - publish → handler latency at a light, steady load (p50/p99).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on any error"
)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use db::{Backend, Row as _};
use messaging::{
    Broker, Handler, HandlerError, Incoming, Message, Outbox, Outgoing, RelayConfig, Subscription,
};
use proto::stores::{
    PRODUCT_AGGREGATE_CHANNEL, STORE_AGGREGATE_CHANNEL, STORE_CREATED_EVENT, StoreCreated,
};
use tokio_util::sync::CancellationToken;

const SCHEMA: &str = "bench";
const RELAY_MESSAGES: usize = 20_000;
const LATENCY_RATE: u64 = 100; // messages per second
const LATENCY_WINDOW: Duration = Duration::from_secs(5);

fn message(i: usize) -> Message {
    let event = StoreCreated {
        id: format!("store-{i}"),
        name: format!("Store {i}"),
        location: "Level 1".into(),
    };
    Message::new(STORE_AGGREGATE_CHANNEL, STORE_CREATED_EVENT, &event).about(format!("store-{i}"))
}

async fn raw_publish(broker: &dyn Broker, in_flight: usize) -> f64 {
    let bodies: Vec<(String, Vec<u8>)> = (0..20_000)
        .map(|i| {
            let m = message(i);
            (m.id().to_owned(), m.envelope.encode())
        })
        .collect();
    let total = if in_flight == 1 { 3_000 } else { bodies.len() };
    let started = Instant::now();
    for chunk in bodies[..total].chunks(in_flight) {
        let outgoing: Vec<Outgoing<'_>> = chunk
            .iter()
            .map(|(id, body)| Outgoing {
                subject: STORE_AGGREGATE_CHANNEL,
                id,
                body,
            })
            .collect();
        broker.publish(&outgoing).await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// A backlog's rate through a relay already running and caught up (its connections open, its
/// statements prepared, as in a running mall): `RELAY_MESSAGES` rows committed at once, timed
/// from the commit until the last of them is marked.
async fn relay_throughput(test: &db::testing::TestDb, broker: Arc<dyn Broker>) -> f64 {
    let outbox = Outbox::new(SCHEMA);
    let stop = CancellationToken::new();
    tokio::spawn(messaging::outbox::relay(
        test.db.clone(),
        outbox.clone(),
        broker,
        RelayConfig::default(),
        stop.clone(),
    ));
    let all_marked = || async {
        loop {
            let left: i64 =
                sqlx::query("SELECT COUNT(*) FROM bench.outbox WHERE published_at IS NULL")
                    .fetch_one(test.db.pool())
                    .await
                    .unwrap()
                    .get(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let mut tx = test.db.begin().await.unwrap();
    outbox
        .stage(&mut tx, [message(RELAY_MESSAGES + 1_000_000)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    all_marked().await;
    let mut tx = test.db.begin().await.unwrap();
    outbox
        .stage(&mut tx, (0..RELAY_MESSAGES).map(message))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let started = Instant::now();
    all_marked().await;
    let rate = RELAY_MESSAGES as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    rate
}

struct Latencies(Arc<Mutex<Vec<Duration>>>);

#[async_trait]
impl Handler for Latencies {
    async fn handle(&self, _tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        let waited = chrono::Utc::now() - message.envelope.sent_at;
        self.0
            .lock()
            .unwrap()
            .push(waited.to_std().unwrap_or_default());
        Ok(())
    }
}

async fn latency(
    test: &db::testing::TestDb,
    broker: Arc<dyn Broker>,
) -> (Duration, Duration, usize) {
    test.db.migrate(SCHEMA, &messaging::MIGRATIONS).await.ok();
    let outbox = Outbox::new(SCHEMA);
    let stop = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(messaging::outbox::relay(
        test.db.clone(),
        outbox.clone(),
        broker.clone(),
        RelayConfig::default(),
        stop.clone(),
    ));
    // A subject of its own: no backlog from the throughput runs ahead of the measured messages.
    let subscription = Subscription::new(SCHEMA, "bench-latency", PRODUCT_AGGREGATE_CHANNEL);
    tokio::spawn(messaging::subscription::run(
        test.db.clone(),
        broker,
        subscription,
        Arc::new(Latencies(seen.clone())),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
    let sent = (LATENCY_RATE * LATENCY_WINDOW.as_secs()) as usize;
    for i in 0..sent {
        tick.tick().await;
        let mut tx = test.db.begin().await.unwrap();
        let mut message = message(RELAY_MESSAGES + i);
        message.subject = PRODUCT_AGGREGATE_CHANNEL.to_owned();
        outbox.stage(&mut tx, [message]).await.unwrap();
        tx.commit().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let mut latencies = seen.lock().unwrap().clone();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (at(0.50), at(0.99), latencies.len())
}

async fn measure(backend: Backend) {
    let test = db::testing::fresh(backend, &[SCHEMA, messaging::embedded::SCHEMA]).await;
    test.db
        .migrate(SCHEMA, &messaging::MIGRATIONS)
        .await
        .unwrap();
    let broker = messaging::testing::broker(backend, &test.db).await;
    let raw_1 = raw_publish(broker.broker.as_ref(), 1).await;
    let raw_n = raw_publish(broker.broker.as_ref(), 256).await;
    let relay = relay_throughput(&test, broker.broker.clone()).await;
    let (p50, p99, count) = latency(&test, broker.broker.clone()).await;
    let name = match backend {
        Backend::Sqlite => "sqlite + embedded",
        Backend::Postgres => "postgres + jetstream",
    };
    db::testing::record_bench(
        serde_json::json!({"bench": "messaging", "backend": name, "raw_1": raw_1, "raw_256": raw_n, "relay": relay,
        "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3}),
    );
    println!(
        "{name:<22} {raw_1:>12.0} {raw_n:>12.0} {relay:>12.0} {:>7.0}% {:>9.2} {:>9.2} {count:>6}",
        100.0 * relay / raw_n,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    println!(
        "messaging: publish rates and relay throughput in msgs/s; publish→handler latency at {LATENCY_RATE} msgs/s in ms"
    );
    println!(
        "{:<22} {:>12} {:>12} {:>12} {:>8} {:>9} {:>9} {:>6}",
        "backend", "raw 1-ack", "raw 256", "relay", "of raw", "p50 ms", "p99 ms", "n"
    );
    measure(Backend::Sqlite).await;
    let reachable = messaging::testing::postgres_and_nats_answer().await;
    if reachable {
        measure(Backend::Postgres).await;
    } else {
        println!("postgres + jetstream   not measured: PostgreSQL or NATS does not answer");
    }
}
