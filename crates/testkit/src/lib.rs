//! Test support: [`spawn_app`] runs the real process — the same `mallbots::start` as `main` —
//! on loopback ports chosen by the OS, with a fresh database on the backend under test, and
//! stops it when the [`TestApp`] is dropped.

use std::{net::SocketAddr, sync::Arc};

pub use db::{Backend, testing::selected as selected_backends};
use tokio::{sync::oneshot, task::JoinHandle};

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

/// A client of the mall's REST API wherever it runs: an in-process [`TestApp`] (which derefs
/// to one) or the gateway of a mall run as separate processes.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
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

impl Api {
    /// The API at `base` (`http://host:port`).
    pub fn new(base: &str) -> Api {
        host::install_crypto_provider();
        Api {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// The same API, every request carrying `Authorization: Bearer <token>`.
    ///
    /// # Panics
    /// When `token` cannot be a header value.
    pub fn bearer(&self, token: &str) -> Api {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("a token is a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Api {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("a client with a header"),
        }
    }

    /// `<base>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// GET `path`.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET reaches the app")
    }

    /// Sends `method path` with a raw body.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .body(body)
            .send()
            .await
            .expect("the request reaches the app")
    }

    /// Sends `method path` with a JSON body (`Value::Null`: no body); the status and the JSON
    /// answer (`Value::Null` when the answer is not JSON).
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut request = self.client.request(method, self.url(path));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the request reaches the app");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Polls GET `path` until the value at the JSON `pointer` is `expected` (read models and
    /// sagas catch up asynchronously), for at most 20 s; the last body.
    ///
    /// # Panics
    /// When it never is; the message shows the last answer.
    pub async fn eventually(
        &self,
        path: &str,
        pointer: &str,
        expected: impl Into<serde_json::Value>,
    ) -> serde_json::Value {
        let expected = &expected.into();
        until(|| async move {
            let (status, body) = self
                .json(reqwest::Method::GET, path, serde_json::Value::Null)
                .await;
            if status == 200 && body.pointer(pointer) == Some(expected) {
                Ok(body)
            } else {
                Err(format!(
                    "{path} {pointer} never became {expected}; last answer {status} {body}"
                ))
            }
        })
        .await
    }

    /// POSTs `body` to `path` and returns the `id` it answers (a create route).
    ///
    /// # Panics
    /// When the answer is not 200 with an id.
    pub async fn create(&self, path: &str, body: serde_json::Value) -> String {
        let (status, reply) = self.json(reqwest::Method::POST, path, body).await;
        assert_eq!(status, 200, "POST {path}: {reply}");
        reply["id"]
            .as_str()
            .unwrap_or_else(|| panic!("POST {path} answered no id: {reply}"))
            .to_owned()
    }

    /// Sets up the sample [`Mall`], the payment authorized for `authorized`.
    ///
    /// # Panics
    /// When a step is refused.
    pub async fn mall(&self, authorized: f64) -> Mall {
        let store = self
            .create(
                "/api/stores",
                serde_json::json!({"name": "Store ABC", "location": "The mall"}),
            )
            .await;
        let product = serde_json::json!({"name": "Product ABC", "description": "A product", "sku": "productABC", "price": 9.99});
        let product = self
            .create(&format!("/api/stores/{store}/products"), product)
            .await;
        let customer = self
            .create(
                "/api/customers",
                serde_json::json!({"name": "Customer ABC", "smsNumber": "555-555-1212"}),
            )
            .await;
        let payment = self
            .create(
                "/api/payments",
                serde_json::json!({"customerId": customer, "amount": authorized}),
            )
            .await;
        Mall {
            store,
            product,
            customer,
            payment,
        }
    }

    /// A basket of `quantity` × the mall's product, checked out with its payment; the basket
    /// (= order) id.
    ///
    /// # Panics
    /// When a step is refused.
    pub async fn checkout(&self, mall: &Mall, quantity: i32) -> String {
        let basket = self
            .create(
                "/api/baskets",
                serde_json::json!({"customerId": mall.customer}),
            )
            .await;
        let add = serde_json::json!({"productId": mall.product, "quantity": quantity});
        let (status, body) = self
            .json(
                reqwest::Method::PUT,
                &format!("/api/baskets/{basket}/addItem"),
                add,
            )
            .await;
        assert_eq!(status, 200, "addItem: {body}");
        let pay = serde_json::json!({"paymentId": mall.payment});
        let (status, body) = self
            .json(
                reqwest::Method::PUT,
                &format!("/api/baskets/{basket}/checkout"),
                pay,
            )
            .await;
        assert_eq!(status, 200, "checkout: {body}");
        basket
    }

    /// Waits until `order` has `status` (the saga and handlers work asynchronously); the order
    /// as answered then.
    ///
    /// # Panics
    /// When it never does.
    pub async fn order_is(&self, order: &str, status: &str) -> serde_json::Value {
        self.eventually(&format!("/api/ordering/{order}"), "/order/status", status)
            .await
    }

    /// Once `order` is approved, a bot is assigned its shopping list and completes it: the
    /// order becomes ready.
    ///
    /// # Panics
    /// When a step is refused or never happens.
    pub async fn pick(&self, order: &str) {
        let approved = self
            .eventually(
                &format!("/api/ordering/{order}"),
                "/order/status",
                "approved",
            )
            .await;
        let list = approved["order"]["shoppingId"]
            .as_str()
            .unwrap_or_else(|| panic!("order {order} has no shopping list: {approved}"))
            .to_owned();
        let depot = format!("/api/depot/shopping/{list}");
        self.eventually(&depot, "/shoppingList/status", "available")
            .await;
        for (step, body) in [
            ("assign", serde_json::json!({"botId": "bot-1"})),
            ("complete", serde_json::json!({})),
        ] {
            let (status, body) = self
                .json(reqwest::Method::PUT, &format!("{depot}/{step}"), body)
                .await;
            assert_eq!(status, 200, "{step}: {body}");
        }
    }

    /// Once `order` is ready, its invoice is paid: the order completes.
    ///
    /// # Panics
    /// When the payment is refused or the invoice never comes.
    pub async fn pay(&self, order: &str) {
        let invoice = format!("/api/payments/invoices/{order}");
        self.eventually(&invoice, "/invoice/status", "pending")
            .await;
        let (status, body) = self
            .json(
                reqwest::Method::PUT,
                &format!("{invoice}/pay"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 200, "pay: {body}");
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
