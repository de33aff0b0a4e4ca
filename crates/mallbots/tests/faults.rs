//! Faults from the outside, as an operator meets them (issue 15), each on servers of the
//! test's own: the mall `kill -9`ed with orders in flight resumes them within seconds of its
//! restart, on both backends; PostgreSQL stopped for three seconds under load gives clients
//! 503s while it is down and nothing else, and loses no order; with NATS down, orders are still
//! taken (their messages wait in the outboxes) and go through once it is back.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "support/processes.rs"]
mod processes;

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use db::{Backend, testing::PrivatePostgres};
use messaging::testing::NatsServer;
use processes::{Process, start};
use reqwest::Method;
use serde_json::json;
use testkit::Api;

db::backend_tests!(a_killed_mall_resumes_its_orders_within_seconds);

/// What a backend's processes share: their servers (or data directory) and settings.
struct Deployment {
    env: Vec<(String, String)>,
    _data: tempfile::TempDir,
    postgres: Option<PrivatePostgres>,
    nats: Option<NatsServer>,
}

impl Deployment {
    fn new(backend: Backend) -> Deployment {
        let data = tempfile::tempdir().unwrap();
        let mut env = vec![("DATA_DIR".to_owned(), data.path().display().to_string())];
        let (postgres, nats) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let (postgres, nats) = (PrivatePostgres::start(false), NatsServer::start());
                env.push((
                    "PG_CONN".into(),
                    format!("postgres://postgres@127.0.0.1:{}/postgres", postgres.port()),
                ));
                env.push(("NATS_URL".into(), nats.url()));
                (Some(postgres), Some(nats))
            }
        };
        Deployment {
            env,
            _data: data,
            postgres,
            nats,
        }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn start(&self) -> Process {
        self.start_with(&[])
    }

    fn start_with(&self, env: &[(&str, &str)]) -> Process {
        start("mallbots", &[], &[&self.env()[..], env].concat())
    }

    /// `mallbots saga list` (with `stuck`: `--stuck --waiting 0s`, the sagas waiting on a
    /// step): each saga's id and status.
    fn sagas(&self, stuck: bool) -> Vec<(String, String)> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mallbots"));
        command.args(["saga", "list"]);
        if stuck {
            command.args(["--stuck", "--waiting", "0s"]);
        }
        let out = command
            .env_remove("PG_CONN")
            .envs(self.env())
            .env("LOG_LEVEL", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Under a header line, one saga a line: its id, then its status.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
            })
            .collect()
    }
}

fn api(process: &Process) -> Api {
    Api::new(&format!("http://{}", process.http))
}

/// The status of `order` now (`None` when it cannot be read).
async fn status_of(api: &Api, order: &str) -> Option<String> {
    let (code, body) = api
        .json(Method::GET, &format!("/api/ordering/{order}"), json!(null))
        .await;
    (code == 200).then(|| body["order"]["status"].as_str().unwrap_or("").to_owned())
}

async fn a_killed_mall_resumes_its_orders_within_seconds(backend: Backend) {
    let deployment = Deployment::new(backend);
    let mut first = deployment.start();
    let api = api(&first);
    let mall = api.mall(1_000_000.0).await;
    // Checkouts side by side, the process killed the moment the last is accepted: the sagas
    // of the latest are between steps, their messages taken and not yet settled.
    let orders: Vec<String> =
        futures::future::join_all((0..24).map(|_| api.checkout(&mall, 1))).await;
    first.child.kill().unwrap();
    let _ = first.child.wait();
    let (finished, running): (Vec<_>, Vec<_>) = deployment
        .sagas(false)
        .into_iter()
        .partition(|(_, status)| status == "completed");
    let in_flight = orders
        .iter()
        .filter(|o| !finished.iter().any(|(id, _)| id == *o))
        .count();
    assert!(
        in_flight > 0,
        "every order was through at the kill: the test proves nothing"
    );
    // A saga the crash left between steps is an operator's to see.
    let waiting = deployment.sagas(true);
    assert_eq!(
        waiting, running,
        "the stuck list is every saga left running"
    );
    let waiting = waiting.len();

    let restarted = Instant::now();
    let second = deployment.start();
    let api = self::api(&second);
    let mut still_waiting: Vec<&String> = orders.iter().collect();
    while !still_waiting.is_empty() {
        let mut still = Vec::new();
        for order in still_waiting {
            if status_of(&api, order).await.as_deref() != Some("approved") {
                still.push(order);
            }
        }
        still_waiting = still;
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "{} of {} orders ({in_flight} in flight at the kill, {waiting} sagas waiting on a \
             step) not approved 5 s after the restart: {still_waiting:?}",
            still_waiting.len(),
            orders.len(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An order is approved before its saga hears the approval's reply: the sagas finish a
    // moment later, within the same bound, and then none is listed as waiting.
    loop {
        let waiting = deployment.sagas(true);
        if waiting.is_empty() {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "sagas still waiting on a step 5 s after the restart: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_answers_503_and_loses_nothing() {
    let deployment = Deployment::new(Backend::Postgres);
    // Shorter than the outage, so that requests waiting for a connection give up within it.
    let process = deployment.start_with(&[("DB_ACQUIRE_TIMEOUT", "1s")]);
    let api = api(&process);
    let mall = api.mall(1_000_000.0).await;
    let statuses = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (api, mall) = (api.clone(), mall.clone());
            let (statuses, accepted, stop) = (statuses.clone(), accepted.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    if let Some(order) = order_once(&api, &mall, &statuses).await {
                        accepted.lock().unwrap().push(order);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let postgres = deployment.postgres.as_ref().unwrap();
    postgres.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    postgres.start_again();
    let up = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.cancel();
    for client in clients {
        client.await.unwrap();
    }

    let statuses = statuses.lock().unwrap().clone();
    let unavailable = statuses.iter().filter(|a| a.code == 503).count();
    // A 503 only while it is down: not for a request sent once the server was back (a
    // request sent just before may have waited its acquire timeout).
    let broken: Vec<_> = statuses
        .iter()
        .filter(|a| a.code >= 500 && (a.code != 503 || a.sent > up))
        .collect();
    assert!(
        broken.is_empty(),
        "answers other than 503: {broken:?}; logged: {:#?}",
        process.errors()
    );
    assert!(
        unavailable > 0,
        "the stop was never seen: the test proves nothing"
    );
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() > 10, "too little load: {}", accepted.len());
    for order in &accepted {
        api.order_is(order, "approved").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_taken_while_nats_is_down_and_go_through_when_it_is_back() {
    let mut deployment = Deployment::new(Backend::Postgres);
    let process = deployment.start();
    let api = api(&process);
    let mall = api.mall(1_000_000.0).await;
    deployment.nats.as_mut().unwrap().stop();
    // Not ready without its broker, once the client has seen the connection go.
    testkit::until(|| async {
        let (status, body) = api.json(Method::GET, "/readiness", json!(null)).await;
        (status == 503)
            .then_some(())
            .ok_or(format!("still {status} {body}"))
    })
    .await;
    let statuses = Mutex::new(Vec::new());
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.extend(order_once(&api, &mall, &statuses).await);
    }
    let refused: Vec<_> = statuses
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.code >= 500)
        .cloned()
        .collect();
    assert!(
        refused.is_empty(),
        "requests failed with NATS down: {refused:?}"
    );
    assert_eq!(orders.len(), 5, "every checkout taken");
    // The orders exist once ordering hears of the checkouts: after NATS is back.
    deployment.nats.as_mut().unwrap().resume();
    for order in &orders {
        api.order_is(order, "approved").await;
    }
}

/// An answer the load got: when its request was sent, its status, and what it was.
#[derive(Debug, Clone)]
#[allow(
    dead_code,
    reason = "`what` is read through Debug in a failure message"
)]
struct Answer {
    sent: Instant,
    code: u16,
    what: String,
}

/// One order, basket to checkout, each answer recorded; the order id if it was checked out.
async fn order_once(
    api: &Api,
    mall: &testkit::Mall,
    statuses: &Mutex<Vec<Answer>>,
) -> Option<String> {
    let step = |method: Method, path: String, body: serde_json::Value| async move {
        let sent = Instant::now();
        let (code, answer) = api.json(method, &path, body).await;
        let what = format!("{path} {answer}");
        statuses.lock().unwrap().push(Answer { sent, code, what });
        (code, answer)
    };
    let (code, basket) = step(
        Method::POST,
        "/api/baskets".into(),
        json!({"customerId": mall.customer}),
    )
    .await;
    let basket = basket["id"].as_str().filter(|_| code == 200)?.to_owned();
    let add = json!({"productId": mall.product, "quantity": 1});
    let (code, _) = step(Method::PUT, format!("/api/baskets/{basket}/addItem"), add).await;
    if code != 200 {
        return None;
    }
    let pay = json!({"paymentId": mall.payment});
    let (code, _) = step(Method::PUT, format!("/api/baskets/{basket}/checkout"), pay).await;
    if code != 200 {
        return None;
    }
    step(Method::GET, format!("/api/ordering/{basket}"), json!(null)).await;
    Some(basket)
}
