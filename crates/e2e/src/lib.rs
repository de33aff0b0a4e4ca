//! The book's features (`features/*.feature`) as executable specifications: [`run`] plays
//! every scenario against a mall's REST API — an in-process app on either backend
//! (`tests/features.rs`) or the gateway of the mall run one module per process (the
//! microservices test of the `mallbots` crate).
//!
//! Scenarios run concurrently against one mall: each keeps the names it gives (stores,
//! products, customers) in its own world, mapped to the ids the app answered, so scenarios
//! never see each other's data.

use std::{collections::HashMap, fmt, sync::Arc};

use cucumber::{World as _, gherkin::Step, given, then, when, writer::Stats as _};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Api, until};

mod steps;

tokio::task_local! {
    /// The API the scenarios of one run talk to (cucumber builds worlds without arguments).
    static API: Arc<Api>;
}

/// Plays every feature against `api`; `mall` names it in the failure message.
///
/// # Panics
/// When a step fails, is undefined, or a feature does not parse; cucumber's report above the
/// panic says which.
pub async fn run(api: Api, mall: &str) {
    // `RUST_LOG=warn` shows what the app logged beside a failing step.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let features = concat!(env!("CARGO_MANIFEST_DIR"), "/features");
    let run = Mall::cucumber()
        // The arguments are the test harness's, not cucumber's.
        .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default())
        .max_concurrent_scenarios(8)
        .fail_on_skipped()
        .run(features);
    let summary = API.scope(Arc::new(api), run).await;
    assert!(
        !summary.execution_has_failed() && summary.parsing_errors() == 0,
        "{} step(s) failed, {} skipped, {} parsing error(s), {} hook error(s) on {mall}",
        summary.failed_steps(),
        summary.skipped_steps(),
        summary.parsing_errors(),
        summary.hook_errors(),
    );
    assert!(summary.passed_steps() > 0, "no step ran");
}

/// One scenario's view of the mall.
#[derive(cucumber::World)]
#[world(init = Self::new)]
struct Mall {
    app: Arc<Api>,
    stores: HashMap<String, String>,
    products: HashMap<String, String>,
    customers: HashMap<String, String>,
    /// Customer name → their authorized payment.
    payments: HashMap<String, String>,
    /// The basket, which becomes the order of the same id.
    basket: Option<String>,
    /// The answer to the last action, until a step looks at it.
    answer: Option<(u16, Value)>,
}

impl fmt::Debug for Mall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mall")
            .field("stores", &self.stores)
            .field("products", &self.products)
            .field("customers", &self.customers)
            .field("basket", &self.basket)
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

impl Mall {
    fn new() -> Self {
        Self {
            app: API.with(Arc::clone),
            stores: HashMap::new(),
            products: HashMap::new(),
            customers: HashMap::new(),
            payments: HashMap::new(),
            basket: None,
            answer: None,
        }
    }

    /// Sends an action; its answer waits in `answer` for the next step to judge.
    async fn act(&mut self, method: Method, path: &str, body: Value) -> Value {
        self.settle();
        let (status, reply) = self.app.json(method, path, body).await;
        self.answer = Some((status, reply.clone()));
        reply
    }

    /// Fails when the last action was refused and no step said it would be.
    fn settle(&mut self) {
        if let Some((status, body)) = self.answer.take() {
            assert_eq!(status, 200, "an earlier step was refused: {body}");
        }
    }

    async fn get(&mut self, path: &str) -> Value {
        self.settle();
        let (status, body) = self.app.json(Method::GET, path, Value::Null).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn eventually(&mut self, path: &str, pointer: &str, expected: &str) -> Value {
        self.settle();
        self.app.eventually(path, pointer, expected).await
    }

    /// The id behind a name this scenario gave, or the name itself for one it never created
    /// (the unknown-id scenarios).
    fn id(names: &HashMap<String, String>, name: &str) -> String {
        names.get(name).cloned().unwrap_or_else(|| name.to_owned())
    }

    fn customer(&self, name: &str) -> String {
        Self::id(&self.customers, name)
    }

    fn store(&self, name: &str) -> String {
        Self::id(&self.stores, name)
    }

    fn product(&self, name: &str) -> String {
        Self::id(&self.products, name)
    }

    fn basket(&self) -> String {
        self.basket.clone().expect("a basket was started")
    }

    async fn register(&mut self, name: &str, sms: &str) {
        let reply = self
            .act(
                Method::POST,
                "/api/customers",
                json!({"name": name, "smsNumber": sms}),
            )
            .await;
        if let Some(id) = reply["id"].as_str() {
            self.customers.insert(name.to_owned(), id.to_owned());
        }
    }

    async fn open_store(&mut self, name: &str, location: &str) {
        let body = json!({"name": name, "location": location});
        let reply = self.act(Method::POST, "/api/stores", body).await;
        if let Some(id) = reply["id"].as_str() {
            self.stores.insert(name.to_owned(), id.to_owned());
        }
    }

    async fn add_product(&mut self, store: &str, product: Value) {
        let path = format!("/api/stores/{}/products", self.store(store));
        let name = product["name"].as_str().unwrap_or_default().to_owned();
        let reply = self.act(Method::POST, &path, product).await;
        if let Some(id) = reply["id"].as_str() {
            self.products.insert(name, id.to_owned());
        }
    }

    async fn order(&mut self) -> Value {
        let path = format!("/api/ordering/{}", self.basket());
        self.get(&path).await
    }
}

/// The rows of a step's data table as maps from the header's names.
fn rows(step: &Step) -> Vec<HashMap<String, String>> {
    let table = step.table.as_ref().expect("the step has a table");
    let (header, rows) = table.rows.split_first().expect("the table has a header");
    rows.iter()
        .map(|row| {
            header
                .iter()
                .cloned()
                .zip(row.iter().map(|cell| cell.trim().to_owned()))
                .collect()
        })
        .collect()
}

fn number(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a number"))
}

fn assert_money(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    assert!(
        (actual - expected).abs() < 0.005,
        "{what}: expected {expected}, got {actual}"
    );
}

// ---- Answers ----

#[then(expr = "the request is refused with {int} {string}")]
async fn refused(w: &mut Mall, status: u16, message: String) {
    let (actual, body) = w.answer.take().expect("an action was sent");
    assert_eq!(
        (actual, &body["message"]),
        (status, &json!(message)),
        "{body}"
    );
}
