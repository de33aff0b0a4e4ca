//! `cargo bench -p es`: event-store appends/s and loads/s on SQLite and PostgreSQL, beside a raw
//! single-row insert-commit loop on the same database, so the framework's cost is a ratio.
//!
//! PostgreSQL is measured when `MALLBOTS_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! answers; each backend gets a fresh database, dropped afterwards.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on any error"
)]

use std::time::{Duration, Instant};

use db::{Backend, Db};
use es::{Aggregate, DomainEvent, EventStore};
use serde::{Deserialize, Serialize};

const WINDOW: Duration = Duration::from_secs(3);
const ACCOUNTS: usize = 200;
const CONCURRENCY: usize = 16;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    balance: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Event {
    Deposited(i64),
}

impl DomainEvent for Event {
    fn name(&self) -> &'static str {
        "bench.Deposited"
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "bench.Account";
    type Command = i64;
    type Event = Event;
    type Error = std::convert::Infallible;

    fn handle(&self, cents: i64) -> Result<Vec<Event>, Self::Error> {
        Ok(vec![Event::Deposited(cents)])
    }

    fn apply(&mut self, Event::Deposited(cents): &Event) {
        self.balance += cents;
    }
}

/// Runs `op(i)` sequentially (or with `tasks` concurrent callers) for [`WINDOW`]; ops/s.
async fn rate<F, Fut>(tasks: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let workers = (0..tasks).map(|worker| {
        let op = op.clone();
        tokio::spawn(async move {
            let mut done = 0;
            while started.elapsed() < WINDOW {
                // Interleaved, so concurrent callers work on different accounts.
                op(done * tasks + worker).await;
                done += 1;
            }
            done
        })
    });
    let total: usize = futures::future::join_all(workers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    total as f64 / started.elapsed().as_secs_f64()
}

async fn raw_inserts(db: &Db, tasks: usize) -> f64 {
    let db = db.clone();
    rate(tasks, move |i| {
        let db = db.clone();
        async move {
            sqlx::query("INSERT INTO bench.raw (id, n) VALUES ($1, $2)")
                .bind(format!("{tasks}-{i}"))
                .bind(i as i64)
                .execute(db.pool())
                .await
                .unwrap();
        }
    })
    .await
}

async fn measure(backend: Backend) {
    let test = db::testing::fresh(backend, &["bench"]).await;
    let db = test.db.clone();
    db.migrate("bench", &es::MIGRATIONS).await.unwrap();
    sqlx::raw_sql("CREATE TABLE bench.raw (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let store: EventStore<Account> = EventStore::new(db.clone(), "bench", ()).unwrap();

    let raw_1 = raw_inserts(&db, 1).await;
    let raw_n = raw_inserts(&db, CONCURRENCY).await;
    let appends = |tasks| {
        let store = store.clone();
        rate(tasks, move |i| {
            let store = store.clone();
            async move {
                // Round-robin over a fixed set: each append loads a snapshot plus at most two events.
                store
                    .execute(&format!("account-{}", i % ACCOUNTS), 1)
                    .await
                    .unwrap();
            }
        })
    };
    let appends_1 = appends(1).await;
    let appends_n = appends(CONCURRENCY).await;
    let loads = |tasks| {
        let store = store.clone();
        rate(tasks, move |i| {
            let store = store.clone();
            async move {
                store
                    .load(&format!("account-{}", i % ACCOUNTS))
                    .await
                    .unwrap()
                    .unwrap();
            }
        })
    };
    let loads_1 = loads(1).await;
    let loads_n = loads(CONCURRENCY).await;
    // A read must not grow with the aggregate's history: the snapshot plus its short tail.
    let history = |events: usize| {
        let store = store.clone();
        async move {
            let id = format!("history-{events}");
            for _ in 0..events {
                store.execute(&id, 1).await.unwrap();
            }
            let loaded = store.load(&id).await.unwrap().unwrap();
            assert!(loaded.events_replayed < 3, "{loaded:?}");
            rate(1, move |_| {
                let (store, id) = (store.clone(), id.clone());
                async move {
                    store.load(&id).await.unwrap().unwrap();
                }
            })
            .await
        }
    };
    let short = history(3).await;
    let long = history(1_000).await;

    let row = |what: &str, one: f64, many: f64, base: Option<(f64, f64)>| {
        let ratio = base.map_or(String::new(), |(b1, bn)| {
            format!("{:>7.0}% {:>7.0}%", 100.0 * one / b1, 100.0 * many / bn)
        });
        println!("{backend:<9} {what:<26} {one:>10.0} {many:>10.0}   {ratio}");
        db::testing::record_bench(
            serde_json::json!({"bench": "es", "backend": backend.to_string(), "what": what, "one": one, "many": many}),
        );
    };
    row("raw insert+commit", raw_1, raw_n, None);
    row(
        "es append (execute)",
        appends_1,
        appends_n,
        Some((raw_1, raw_n)),
    );
    row("es load (snapshot+tail)", loads_1, loads_n, None);
    row("es load, 3 vs 1,000 events", short, long, None);
    db.close().await;
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need to honour.
    println!(
        "event store throughput, ops/s ({}s windows; {} accounts; concurrent = {} callers)",
        WINDOW.as_secs(),
        ACCOUNTS,
        CONCURRENCY
    );
    println!(
        "{:<9} {:<26} {:>10} {:>10}   {:>8} {:>8}",
        "backend", "operation", "1 caller", "concurrent", "vs raw 1", "vs raw N"
    );
    measure(Backend::Sqlite).await;
    let server = db::testing::postgres_server();
    let reachable = db::testing::postgres_answers().await;
    if reachable {
        measure(Backend::Postgres).await;
    } else {
        println!("postgres  not measured: {server} does not answer");
    }
}
