//! Test support: [`spawn_app`] runs the real process — the same `mallbots::start` as `main` —
//! on loopback ports chosen by the OS, with a fresh database on the backend under test, and
//! stops it when the [`TestApp`] is dropped.

use std::{net::SocketAddr, sync::Arc};

pub use db::{Backend, testing::selected as selected_backends};
use tokio::{sync::oneshot, task::JoinHandle};

mod api;

pub use api::Api;

/// The book's sample shop (create_order.http): store "Store ABC" in "The mall" selling
/// "Product ABC" at 9.99, customer "Customer ABC", and a payment of theirs.
#[derive(Debug, Clone)]
pub struct Mall {
    /// The store id.
    pub store: String,
    /// The product id.
    pub product: String,
    /// The customer id.
    pub customer: String,
    /// The payment id.
    pub payment: String,
}

/// Every module one checkout reaches, directly or through the messages it causes, until the
/// order is approved: what a checkout's trace must span.
pub const CHECKOUT_REACHES: [&str; 8] = [
    "baskets",
    "payments",
    "ordering",
    "cosec",
    "customers",
    "depot",
    "search",
    "notifications",
];

/// The REST error body the app answers with (grpc-gateway's), for comparisons.
pub fn error_body(code: i64, message: &str) -> serde_json::Value {
    serde_json::json!({"code": code, "message": message, "details": []})
}

/// Runs `probe` every 20 ms until it answers `Ok`, for at most 20 s: how tests wait for what
/// the mall does asynchronously (read models, sagas, consumers).
///
/// # Panics
/// When it never does; the message is the last `Err`.
pub async fn until<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(tokio::time::Instant::now() < deadline, "{seen}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A running app.
pub struct TestApp {
    /// The HTTP address.
    pub http: SocketAddr,
    /// The gRPC address.
    pub grpc: SocketAddr,
    /// The backend it runs on.
    pub backend: Backend,
    /// Its REST API.
    pub api: Api,
    /// The app's broker, to look at what it published.
    pub broker: std::sync::Arc<dyn messaging::Broker>,
    /// The app's database, to look at what it stored.
    pub db: db::Db,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the database and stream outlive the app using them.
    _stream: Option<messaging::testing::StreamGuard>,
    _database: db::testing::Guard,
    _metrics: Metrics,
}

/// The metrics recorder is global to a process, so every app of one test binary adds to the
/// same counters: an app whose test asserts exact counts runs with no other app beside it.
fn recorder_turns() -> Arc<tokio::sync::RwLock<()>> {
    static TURNS: std::sync::LazyLock<Arc<tokio::sync::RwLock<()>>> =
        std::sync::LazyLock::new(Arc::default);
    TURNS.clone()
}

/// An app's share of the metrics recorder.
enum Metrics {
    Shared(#[allow(dead_code, reason = "held, not read")] tokio::sync::OwnedRwLockReadGuard<()>),
    Alone(#[allow(dead_code, reason = "held, not read")] tokio::sync::OwnedRwLockWriteGuard<()>),
}

/// Starts the app with `modules` (names as in `MODULES`) on a fresh database on `backend`:
/// SQLite with the embedded broker, or PostgreSQL with JetStream (a stream of its own).
///
/// # Panics
/// When it cannot start: the test cannot run.
pub async fn spawn_app(modules: &[&str], backend: Backend) -> TestApp {
    spawn_app_with(modules, backend, |_| {}).await
}

/// [`spawn_app`] with settings changed by `configure`.
///
/// # Panics
/// When it cannot start: the test cannot run.
pub async fn spawn_app_with(
    modules: &[&str],
    backend: Backend,
    configure: impl FnOnce(&mut host::Config),
) -> TestApp {
    let metrics = Metrics::Shared(recorder_turns().read_owned().await);
    start_app(modules, backend, configure, metrics).await
}

/// [`spawn_app_with`], alone among this test binary's apps while it runs: its `/metrics`
/// count what it did and nothing else (the recorder is global to the process).
///
/// # Panics
/// When it cannot start: the test cannot run.
pub async fn spawn_app_counted(
    modules: &[&str],
    backend: Backend,
    configure: impl FnOnce(&mut host::Config),
) -> TestApp {
    let metrics = Metrics::Alone(recorder_turns().write_owned().await);
    start_app(modules, backend, configure, metrics).await
}

async fn start_app(
    modules: &[&str],
    backend: Backend,
    configure: impl FnOnce(&mut host::Config),
    metrics: Metrics,
) -> TestApp {
    let (target, database) = db::testing::fresh_target(backend).await;
    let selected = if modules.is_empty() {
        Vec::new()
    } else {
        mallbots::select(&modules.join(",")).expect("known modules")
    };
    let mut config = host::Config::for_tests(target);
    let stream = (backend == Backend::Postgres).then(|| {
        let url = messaging::testing::nats_url();
        config.nats_stream = messaging::testing::unique_stream();
        config.nats_url = Some(url.clone());
        messaging::testing::StreamGuard::new(url, config.nats_stream.clone())
    });
    configure(&mut config);
    let host = mallbots::start(config, &selected)
        .await
        .unwrap_or_else(|e| panic!("starting the app on {backend}: {e:#}"));
    let (http, grpc, broker, db) = (
        host.http_addr(),
        host.grpc_addr(),
        host.broker(),
        host.db().clone(),
    );
    let (stop, stopped) = oneshot::channel();
    let running = tokio::spawn(host.run(async {
        let _ = stopped.await;
    }));
    TestApp {
        http,
        grpc,
        backend,
        api: Api::new(&format!("http://{http}")),
        broker,
        db,
        stop: Some(stop),
        running: Some(running),
        _stream: stream,
        _database: database,
        _metrics: metrics,
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    /// Publishes `message` to the app's broker as another module would (de-duplication id =
    /// the message id).
    ///
    /// # Panics
    /// When the broker refuses it.
    pub async fn publish(&self, message: &messaging::Message) {
        self.publish_as(message, message.id()).await;
    }

    /// Publishes `message` under broker de-duplication id `broker_id`: a second call with
    /// another id delivers the same message again, as a redelivery would.
    ///
    /// # Panics
    /// When the broker refuses it.
    pub async fn publish_as(&self, message: &messaging::Message, broker_id: &str) {
        let body = message.envelope.encode();
        let outgoing = messaging::Outgoing {
            subject: &message.subject,
            id: broker_id,
            body: &body,
        };
        self.broker
            .publish(&[outgoing])
            .await
            .expect("the broker takes the message");
    }

    /// The first `count` messages published on `subject` (oldest first), read by a consumer of
    /// the test's own; fewer if they do not all arrive within 10 s.
    ///
    /// # Panics
    /// When the broker cannot be read.
    pub async fn messages(&self, subject: &str, count: usize) -> Vec<messaging::Envelope> {
        self.messages_within(subject, count, std::time::Duration::from_secs(10))
            .await
    }

    /// [`TestApp::messages`], waiting at most `wait` (to assert that nothing was published).
    ///
    /// # Panics
    /// When the broker cannot be read.
    pub async fn messages_within(
        &self,
        subject: &str,
        count: usize,
        wait: std::time::Duration,
    ) -> Vec<messaging::Envelope> {
        let spec = messaging::ConsumerSpec {
            durable: format!("testkit-{}", uuid::Uuid::new_v4().simple()),
            subject: subject.to_owned(),
            ack_wait: std::time::Duration::from_secs(30),
        };
        let mut consumer = self.broker.consumer(&spec).await.expect("a test consumer");
        let mut found = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while found.len() < count {
            let Ok(delivery) = tokio::time::timeout_at(deadline, consumer.next()).await else {
                break;
            };
            let delivery = delivery.expect("the broker delivers");
            found.push(messaging::Envelope::decode(delivery.body()).expect("a MallBots message"));
            let _ = delivery.ack().await;
        }
        found
    }

    /// Stops the app the way SIGTERM does and returns how its run ended.
    ///
    /// # Panics
    /// When the app's task panicked.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.running.take() {
            Some(running) => running.await.expect("the app task does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Tokens for a mall that requires them: one development secret, shared by the tests.
pub mod tokens {
    use std::time::Duration;

    pub use host::auth::Role;

    /// The auth settings a test gives its app (`config.auth = tokens::config()`).
    pub fn config() -> host::auth::AuthConfig {
        host::auth::AuthConfig {
            auth_hs256_secret: Some("the tests' development secret, 32+ bytes".into()),
            ..host::auth::AuthConfig::default()
        }
    }

    /// A token for `subject` with `role`, valid for ten minutes.
    ///
    /// # Panics
    /// Never: the secret is set.
    pub fn token(role: Role, subject: &str) -> String {
        host::auth::mint(&config(), role, subject, Duration::from_secs(600))
            .expect("the test secret mints")
            .token
    }
}
