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

// ---- Customers ----

#[when(expr = "I register a customer named {string} with SMS number {string}")]
async fn register_customer(w: &mut Mall, name: String, sms: String) {
    w.register(&name, &sms).await;
}

#[given(expr = "a customer {string}")]
async fn a_customer(w: &mut Mall, name: String) {
    w.register(&name, "555-0100").await;
    w.settle();
}

#[given(expr = "a customer {string} with a payment authorized for {float}")]
async fn a_paying_customer(w: &mut Mall, name: String, amount: f64) {
    a_customer(w, name.clone()).await;
    let body = json!({"customerId": w.customer(&name), "amount": amount});
    let reply = w.act(Method::POST, "/api/payments", body).await;
    w.settle();
    let payment = reply["id"].as_str().expect("a payment id").to_owned();
    w.payments.insert(name, payment);
}

#[when(expr = "{string} changes the SMS number to {string}")]
async fn change_sms(w: &mut Mall, name: String, sms: String) {
    let path = format!("/api/customers/{}/change-sms", w.customer(&name));
    w.act(Method::PUT, &path, json!({"smsNumber": sms})).await;
}

#[given(expr = "the customer {string} is disabled")]
#[when(expr = "the customer {string} is disabled")]
async fn disable_customer(w: &mut Mall, name: String) {
    let path = format!("/api/customers/{}/disable", w.customer(&name));
    w.act(Method::PUT, &path, json!({})).await;
}

#[when(expr = "I look up the customer {string}")]
async fn look_up_customer(w: &mut Mall, name: String) {
    let path = format!("/api/customers/{}", w.customer(&name));
    w.act(Method::GET, &path, Value::Null).await;
}

#[then(expr = "the customer {string} has SMS number {string} and is {word}")]
async fn customer_is(w: &mut Mall, name: String, sms: String, state: String) {
    let path = format!("/api/customers/{}", w.customer(&name));
    let customer = w.get(&path).await["customer"].take();
    assert_eq!(customer["name"], json!(name));
    assert_eq!(customer["smsNumber"], json!(sms));
    assert_eq!(customer["enabled"], json!(state == "enabled"), "{customer}");
}

// ---- Stores and products ----

#[when(expr = "I create a store named {string} located at {string}")]
async fn create_store(w: &mut Mall, name: String, location: String) {
    w.open_store(&name, &location).await;
}

#[given(expr = "a store {string}")]
async fn a_store(w: &mut Mall, name: String) {
    w.open_store(&name, "Level 1").await;
    w.settle();
}

#[given(expr = "a store {string} selling:")]
async fn a_store_selling(w: &mut Mall, name: String, step: &Step) {
    a_store(w, name.clone()).await;
    for row in rows(step) {
        let product = json!({"name": row["name"], "description": "", "sku": "", "price": number(&row["price"])});
        w.add_product(&name, product).await;
        w.settle();
    }
}

#[when(expr = "the store {string} adds these products:")]
async fn add_products(w: &mut Mall, store: String, step: &Step) {
    for row in rows(step) {
        let product = json!({"name": row["name"], "description": row["description"], "sku": row["sku"], "price": number(&row["price"])});
        w.add_product(&store, product).await;
    }
}

#[when(expr = "a product {string} priced {float} is added to the store {string}")]
async fn add_product(w: &mut Mall, name: String, price: f64, store: String) {
    let product = json!({"name": name, "description": "", "sku": "", "price": price});
    w.add_product(&store, product).await;
}

#[when(expr = "the store {string} is rebranded as {string}")]
async fn rebrand_store(w: &mut Mall, name: String, new_name: String) {
    let id = w.store(&name);
    w.act(
        Method::PUT,
        &format!("/api/stores/{id}/rebrand"),
        json!({"name": new_name}),
    )
    .await;
    w.stores.insert(new_name, id);
}

#[when(expr = "the store {string} starts participating")]
async fn participate(w: &mut Mall, name: String) {
    let path = format!("/api/stores/{}/participating", w.store(&name));
    w.act(Method::PUT, &path, json!({})).await;
}

#[then(expr = "the store {string} is located at {string} and is {}")]
async fn store_is(w: &mut Mall, name: String, location: String, participation: String) {
    let path = format!("/api/stores/{}", w.store(&name));
    let store = w.get(&path).await["store"].take();
    assert_eq!(
        (&store["name"], &store["location"]),
        (&json!(name), &json!(location))
    );
    let participating = participation == "participating";
    assert_eq!(store["participating"], json!(participating), "{store}");
}

/// Whether `list` (an array of stores) holds the scenario's store `name`.
fn lists_store(w: &Mall, list: &Value, name: &str) -> bool {
    let id = w.store(name);
    list.as_array()
        .is_some_and(|stores| stores.iter().any(|s| s["id"] == json!(id)))
}

#[then(expr = "the mall lists the store {string}")]
async fn mall_lists(w: &mut Mall, name: String) {
    let stores = w.get("/api/stores").await;
    assert!(lists_store(w, &stores["stores"], &name), "{stores}");
}

#[then(expr = "the participating stores include {string}")]
async fn participating_lists(w: &mut Mall, name: String) {
    let stores = w.get("/api/stores/participating").await;
    assert!(lists_store(w, &stores["stores"], &name), "{stores}");
}

#[then(expr = "the catalog of {string} is:")]
async fn catalog_is(w: &mut Mall, store: String, step: &Step) {
    let path = format!("/api/stores/{}/products", w.store(&store));
    let expected = rows(step);
    let mut wanted: Vec<(String, f64)> = expected
        .iter()
        .map(|row| (row["name"].clone(), number(&row["price"])))
        .collect();
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    let (api, path, wanted) = (&*w.app, &path, &wanted);
    // The catalog is a read model fed by the store's events.
    until(|| async move {
        let (_, body) = api.json(Method::GET, path, Value::Null).await;
        let mut found: Vec<(String, f64)> = body["products"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|p| {
                        let name = p["name"].as_str().unwrap_or_default().to_owned();
                        (name, p["price"].as_f64().unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let same = found.len() == wanted.len()
            && found
                .iter()
                .zip(wanted)
                .all(|(f, w)| f.0 == w.0 && (f.1 - w.1).abs() < 0.005);
        if same {
            Ok(())
        } else {
            Err(format!("the catalog is {found:?}, not {wanted:?}"))
        }
    })
    .await;
}

#[when(expr = "the price of {string} is {word} to {float}")]
async fn change_price(w: &mut Mall, name: String, direction: String, price: f64) {
    let id = w.product(&name);
    let route = match direction.as_str() {
        "increased" => "increasePrice",
        "decreased" => "decreasePrice",
        other => panic!("a price is increased or decreased, not {other}"),
    };
    let path = format!("/api/stores/products/{id}/{route}");
    w.act(Method::PUT, &path, json!({"price": price})).await;
}

#[then(expr = "the product {string} costs {float}")]
async fn product_costs(w: &mut Mall, name: String, price: f64) {
    let path = format!("/api/stores/products/{}", w.product(&name));
    let product = w.get(&path).await["product"].take();
    assert_money(&product["price"], price, &name);
}

// ---- Baskets ----

#[given(expr = "{string} starts a basket")]
#[when(expr = "{string} starts a basket")]
async fn start_basket(w: &mut Mall, customer: String) {
    let body = json!({"customerId": w.customer(&customer)});
    let reply = w.act(Method::POST, "/api/baskets", body).await;
    w.basket = reply["id"].as_str().map(str::to_owned);
}

#[when(expr = "the unknown customer {string} starts a basket")]
async fn stranger_starts_basket(w: &mut Mall, customer: String) {
    start_basket(w, customer).await;
}

async fn change_item(w: &mut Mall, route: &str, product: &str, quantity: i32) {
    let path = format!("/api/baskets/{}/{route}", w.basket());
    let body = json!({"productId": w.product(product), "quantity": quantity});
    w.act(Method::PUT, &path, body).await;
}

#[given(expr = "{string} adds {int} {string}")]
#[when(expr = "{string} adds {int} {string}")]
async fn add_item(w: &mut Mall, _customer: String, quantity: i32, product: String) {
    change_item(w, "addItem", &product, quantity).await;
}

#[when(expr = "{string} adds {int} of the unknown product {string}")]
async fn add_unknown_item(w: &mut Mall, _customer: String, quantity: i32, product: String) {
    change_item(w, "addItem", &product, quantity).await;
}

#[when(expr = "{string} removes {int} {string}")]
async fn remove_item(w: &mut Mall, _customer: String, quantity: i32, product: String) {
    change_item(w, "removeItem", &product, quantity).await;
}

#[given(expr = "{string} checks out")]
#[when(expr = "{string} checks out")]
async fn check_out(w: &mut Mall, customer: String) {
    let payment = w.payments.get(&customer).cloned().expect("a payment");
    let path = format!("/api/baskets/{}/checkout", w.basket());
    w.act(Method::PUT, &path, json!({"paymentId": payment}))
        .await;
}

#[when(expr = "{string} orders {int} {string}")]
async fn order_items(w: &mut Mall, customer: String, quantity: i32, product: String) {
    start_basket(w, customer.clone()).await;
    add_item(w, customer.clone(), quantity, product).await;
    check_out(w, customer).await;
    w.settle();
}

#[then("the basket is empty")]
async fn basket_is_empty(w: &mut Mall) {
    // A refused action may precede this check; what counts is the basket.
    w.answer = None;
    let path = format!("/api/baskets/{}", w.basket());
    let basket = w.get(&path).await;
    assert_eq!(basket["basket"]["items"], json!([]), "{basket}");
}

#[then("the basket holds:")]
async fn basket_holds(w: &mut Mall, step: &Step) {
    let path = format!("/api/baskets/{}", w.basket());
    let basket = w.get(&path).await;
    let items = basket["basket"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let expected = rows(step);
    assert_eq!(items.len(), expected.len(), "{basket}");
    for row in expected {
        let id = w.product(&row["product"]);
        let item = items
            .iter()
            .find(|i| i["productId"] == json!(id))
            .unwrap_or_else(|| panic!("no {} in {basket}", row["product"]));
        assert_eq!(item["productName"], json!(row["product"]));
        assert_eq!(item["storeName"], json!(row["store"]));
        assert_eq!(item["storeId"], json!(w.store(&row["store"])));
        assert_money(
            &item["productPrice"],
            number(&row["price"]),
            &row["product"],
        );
        assert_eq!(item["quantity"], json!(number(&row["quantity"]) as i64));
    }
}

// ---- Orders ----

#[then(expr = "the order is {string}")]
async fn order_is(w: &mut Mall, status: String) {
    let path = format!("/api/ordering/{}", w.basket());
    w.eventually(&path, "/order/status", &status).await;
}

#[then(expr = "the order totals {float}")]
async fn order_totals(w: &mut Mall, total: f64) {
    let order = w.order().await;
    let sum: f64 = order["order"]["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    i["price"].as_f64().unwrap_or_default()
                        * i["quantity"].as_f64().unwrap_or_default()
                })
                .sum()
        })
        .unwrap_or_default();
    assert_money(&json!(sum), total, "the order's total");
}

#[then(expr = "the saga is {string}")]
async fn saga_is(w: &mut Mall, status: String) {
    let path = format!("/api/cosec/sagas/{}", w.basket());
    w.eventually(&path, "/saga/status", &status).await;
}

#[when(expr = "{string} places an order for {int} {string} and cancels it at once")]
async fn order_and_cancel(w: &mut Mall, customer: String, quantity: i32, product: String) {
    let id = w.product(&product);
    let (store, name, price) = {
        let found = w.get(&format!("/api/stores/products/{id}")).await["product"].take();
        (
            found["storeId"].clone(),
            found["name"].clone(),
            found["price"].clone(),
        )
    };
    let store_name = w
        .get(&format!(
            "/api/stores/{}",
            store.as_str().unwrap_or_default()
        ))
        .await["store"]["name"]
        .take();
    let item = json!({"storeId": store, "productId": id, "storeName": store_name, "productName": name, "price": price, "quantity": quantity});
    let body = json!({"items": [item], "customerId": w.customer(&customer), "paymentId": w.payments[&customer]});
    let reply = w.act(Method::POST, "/api/ordering", body).await;
    w.settle();
    let order = reply["id"].as_str().expect("an order id").to_owned();
    w.act(
        Method::DELETE,
        &format!("/api/ordering/{order}"),
        Value::Null,
    )
    .await;
    w.settle();
    w.basket = Some(order);
}

// ---- Depot ----

async fn shopping_list(w: &mut Mall) -> String {
    let order = w.order().await;
    let list = order["order"]["shoppingId"].as_str().unwrap_or_default();
    assert!(!list.is_empty(), "the order has no shopping list: {order}");
    list.to_owned()
}

#[then(expr = "the shopping list is {string}")]
async fn list_is(w: &mut Mall, status: String) {
    // A rejected order keeps no list id; the saga remembers the one it cancelled.
    let saga = w.get(&format!("/api/cosec/sagas/{}", w.basket())).await;
    let list = saga["saga"]["shoppingId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!list.is_empty(), "the saga created no list: {saga}");
    let path = format!("/api/depot/shopping/{list}");
    w.eventually(&path, "/shoppingList/status", &status).await;
}

#[then("no shopping list was created")]
async fn no_list(w: &mut Mall) {
    let saga = w.get(&format!("/api/cosec/sagas/{}", w.basket())).await;
    assert_eq!(saga["saga"]["shoppingId"], json!(""), "{saga}");
}

#[then(expr = "the shopping list is {string} with stops:")]
async fn list_with_stops(w: &mut Mall, status: String, step: &Step) {
    let list = shopping_list(w).await;
    let path = format!("/api/depot/shopping/{list}");
    let body = w.eventually(&path, "/shoppingList/status", &status).await;
    let stops = &body["shoppingList"]["stops"];
    let mut count = 0;
    for row in rows(step) {
        let stop = &stops[w.store(&row["store"])];
        assert_eq!(stop["storeName"], json!(row["store"]), "{stops}");
        let line = &stop["items"][w.product(&row["product"])];
        assert_eq!(line["name"], json!(row["product"]), "{stops}");
        assert_eq!(line["quantity"], json!(number(&row["quantity"]) as i64));
        count += 1;
    }
    let lines: usize = stops
        .as_object()
        .map(|s| {
            s.values()
                .map(|stop| stop["items"].as_object().map_or(0, |i| i.len()))
                .sum()
        })
        .unwrap_or_default();
    assert_eq!(lines, count, "{stops}");
}

#[when(expr = "bot {string} is assigned the shopping list")]
async fn assign(w: &mut Mall, bot: String) {
    let list = shopping_list(w).await;
    let path = format!("/api/depot/shopping/{list}/assign");
    w.act(Method::PUT, &path, json!({"botId": bot})).await;
}

#[when("the bot completes the shopping list")]
async fn complete(w: &mut Mall) {
    let list = shopping_list(w).await;
    let path = format!("/api/depot/shopping/{list}/complete");
    w.act(Method::PUT, &path, json!({})).await;
}

// ---- Payments ----

#[then(expr = "the invoice is {string} for {float}")]
async fn invoice_is(w: &mut Mall, status: String, amount: f64) {
    let path = format!("/api/payments/invoices/{}", w.basket());
    let invoice = w.eventually(&path, "/invoice/status", &status).await;
    assert_money(&invoice["invoice"]["amount"], amount, "the invoice");
}

#[when(expr = "{string} pays the invoice")]
async fn pay(w: &mut Mall, _customer: String) {
    let path = format!("/api/payments/invoices/{}/pay", w.basket());
    w.act(Method::PUT, &path, json!({})).await;
}

// ---- Notifications and search ----

#[then(expr = "{string} was notified of {string}")]
async fn notified(w: &mut Mall, customer: String, kinds: String) {
    let mut expected: Vec<&str> = kinds.split(',').map(str::trim).collect();
    expected.sort_unstable();
    let path = format!("/api/notifications?customerId={}", w.customer(&customer));
    let (api, path, expected) = (&*w.app, &path, &expected);
    until(|| async move {
        let (_, body) = api.json(Method::GET, path, Value::Null).await;
        let mut found: Vec<&str> = body["notifications"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|n| n["kind"].as_str().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        found.sort_unstable();
        if &found == expected {
            Ok(())
        } else {
            Err(format!("notified of {found:?}"))
        }
    })
    .await;
}

#[then(expr = "search finds the order {string} for {string} totalling {float} with items:")]
async fn search_finds(w: &mut Mall, status: String, customer: String, total: f64, step: &Step) {
    let path = format!("/api/search/orders/{}", w.basket());
    let found = w.eventually(&path, "/order/status", &status).await["order"].take();
    assert_eq!(found["customerName"], json!(customer));
    assert_eq!(found["customerId"], json!(w.customer(&customer)));
    assert_money(&found["total"], total, "the order's total");
    let items = found["items"].as_array().cloned().unwrap_or_default();
    let expected = rows(step);
    assert_eq!(items.len(), expected.len(), "{found}");
    for (item, row) in items.iter().zip(expected) {
        assert_eq!(item["storeName"], json!(row["store"]));
        assert_eq!(item["productName"], json!(row["product"]));
        assert_eq!(item["quantity"], json!(row["quantity"]));
    }
}

#[then(expr = "searching {string}'s {string} orders finds {int} orders")]
async fn search_by_status(w: &mut Mall, customer: String, status: String, count: usize) {
    let filters = json!({"filters": {"customerId": w.customer(&customer), "status": status}});
    let (api, filters, status) = (&*w.app, &filters, &status);
    until(|| async move {
        let (code, reply) = api
            .json(Method::POST, "/api/search/orders", filters.clone())
            .await;
        let found = reply["orders"].as_array().map_or(0, Vec::len);
        if code == 200 && found == count {
            Ok(())
        } else {
            Err(format!(
                "found {found} {status} orders, not {count}: {code} {reply}"
            ))
        }
    })
    .await;
}
