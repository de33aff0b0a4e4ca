//! `mallbots busywork`: the book's load simulator made real. Store owners open stores and list
//! products; simulated customers authorize a payment, fill a basket and check out; the depot's
//! bot picks the order's list; the customer pays the invoice at pick-up. Every order is
//! followed to `completed` over the REST API, so the summary can say how long each stage took
//! and whether any order was lost on the way.

use std::{
    collections::BTreeMap,
    io::IsTerminal as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

mod shared;
mod summary;

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use reqwest::Method;
use serde_json::json;
use shared::{Failure, Shared, lock};
pub use summary::{Percentiles, Summary};

/// Settings of `mallbots busywork`.
#[derive(Debug, Clone, clap::Args)]
pub struct BusyworkArgs {
    /// The mall's REST API: a monolith, or the gateway of the microservices.
    #[arg(long, env = "BUSYWORK_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Bearer token sent with every request, for a mall that requires one (an admin's:
    /// `mallbots token --role admin --subject busywork`).
    #[arg(long, env = "BUSYWORK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Simulated customers shopping at the same time.
    #[arg(long, default_value = "16", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// How long new orders are started (orders under way then finish).
    #[arg(long, default_value = "30s", value_parser = host::parse_duration)]
    pub duration: Duration,
    /// Stop starting orders after this many (0: no limit).
    #[arg(long, default_value = "0")]
    pub orders: u64,
    /// Orders started per second by all customers together (0: as fast as they can).
    #[arg(long, default_value = "0", value_parser = parse_rate)]
    pub rate: f64,
    /// Seed of the simulated choices: the same seed makes the same stores and baskets.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Try a step again when its answer never came (the connection broke, or 502/503/504: a
    /// replica killed under it), up to five times; a refusal after such a retry counts as the
    /// first try having taken effect (the order's next state, polled for, shows whether it did).
    #[arg(long)]
    pub retry: bool,
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "{value:?} is not a rate (orders per second, 0 or more)"
        )),
    }
}

/// Opens the stores and registers the customers; (products, customers).
async fn set_up(
    shared: &Shared,
    args: &BusyworkArgs,
    rng: &mut StdRng,
) -> Result<(Vec<String>, Vec<String>), Failure> {
    let mut products = Vec::new();
    for s in 0..(args.clients / 4).clamp(2, 16) {
        let store = shared
            .id(
                "/api/stores",
                json!({"name": format!("Store {s}"), "location": format!("Level {}", s % 3)}),
                "create store",
            )
            .await?;
        for p in 0..4 {
            let price = f64::from(rng.random_range(100..2000_u32)) / 100.0;
            let product = json!({"name": format!("Product {s}-{p}"), "description": "", "sku": format!("SKU-{s}-{p}"), "price": price});
            products.push(
                shared
                    .id(
                        &format!("/api/stores/{store}/products"),
                        product,
                        "add product",
                    )
                    .await?,
            );
        }
    }
    let mut customers = Vec::new();
    for c in 0..args.clients {
        let customer = json!({"name": format!("Customer {c}"), "smsNumber": format!("555-{c:04}")});
        customers.push(
            shared
                .id("/api/customers", customer, "register customer")
                .await?,
        );
    }
    Ok((products, customers))
}

/// One order, basket to completed.
async fn one_order(
    shared: &Shared,
    customer: &str,
    bot: &str,
    rng: &mut StdRng,
) -> Result<(), Failure> {
    let payment = shared
        .id(
            "/api/payments",
            json!({"customerId": customer, "amount": 10_000.0}),
            "authorize payment",
        )
        .await?;
    let basket = shared
        .id(
            "/api/baskets",
            json!({"customerId": customer}),
            "start basket",
        )
        .await?;
    for _ in 0..rng.random_range(1..=3) {
        let product = &shared.products[rng.random_range(0..shared.products.len())];
        let item = json!({"productId": product, "quantity": rng.random_range(1..=3)});
        shared
            .call(
                Method::PUT,
                &format!("/api/baskets/{basket}/addItem"),
                item,
                "add item",
            )
            .await?;
    }
    shared
        .call(
            Method::PUT,
            &format!("/api/baskets/{basket}/checkout"),
            json!({"paymentId": payment}),
            "checkout",
        )
        .await?;
    let checked_out = Instant::now();
    shared.started.fetch_add(1, Relaxed);
    let lost = |failure: Failure| {
        shared.lost.fetch_add(1, Relaxed);
        failure
    };
    let order = format!("/api/ordering/{basket}");
    let approved = shared
        .until(
            &order,
            "/order/status",
            "approved",
            &["rejected", "cancelled"],
        )
        .await
        .map_err(lost)?;
    lock(&shared.approved_after).push(checked_out.elapsed());
    let list = approved["order"]["shoppingId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The depot's bot: the list is available once the saga has initiated shopping.
    let list_path = format!("/api/depot/shopping/{list}");
    shared
        .until(
            &list_path,
            "/shoppingList/status",
            "available",
            &["canceled"],
        )
        .await
        .map_err(lost)?;
    let bot_steps = [("assign", json!({"botId": bot})), ("complete", json!({}))];
    for (step, body) in bot_steps {
        shared
            .call(Method::PUT, &format!("{list_path}/{step}"), body, step)
            .await
            .map_err(lost)?;
    }
    // The customer pays at pick-up.
    let invoice = format!("/api/payments/invoices/{basket}");
    shared
        .until(&invoice, "/invoice/status", "pending", &["canceled"])
        .await
        .map_err(lost)?;
    shared
        .call(
            Method::PUT,
            &format!("{invoice}/pay"),
            json!({}),
            "pay invoice",
        )
        .await
        .map_err(lost)?;
    shared
        .until(&order, "/order/status", "completed", &["cancelled"])
        .await
        .map_err(lost)?;
    lock(&shared.completed_after).push(checked_out.elapsed());
    shared.completed.fetch_add(1, Relaxed);
    Ok(())
}

/// Runs the simulation against the API at `args.url` and sums it up.
///
/// # Errors
/// The mall cannot be set up (not reachable, or refusing the stores and customers).
pub async fn run(args: &BusyworkArgs) -> anyhow::Result<Summary> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &args.token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| anyhow::anyhow!("--token is not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut shared = Shared {
        http,
        base: args.url.trim_end_matches('/').to_owned(),
        requests: AtomicU64::new(0),
        started: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        approved_after: Mutex::new(Vec::new()),
        completed_after: Mutex::new(Vec::new()),
        errors: Mutex::new(BTreeMap::new()),
        products: Vec::new(),
        retry: args.retry,
    };
    let (products, customers) = set_up(&shared, args, &mut rng)
        .await
        .map_err(|f| anyhow::anyhow!("setting the mall up at {}: {}", args.url, f.0))?;
    shared.products = products;
    shared.requests.store(0, Relaxed);
    let shared = Arc::new(shared);

    let progress = progress_bar(args);
    let began = Instant::now();
    let stop_at = began + args.duration;
    // Orders are started on a shared schedule when a rate is set: each takes the next slot.
    let slots = Arc::new(AtomicU64::new(0));
    let claimed = Arc::new(AtomicU64::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for (index, customer) in customers.into_iter().enumerate() {
        let (shared, slots, claimed) = (
            Arc::clone(&shared),
            Arc::clone(&slots),
            Arc::clone(&claimed),
        );
        let (rate, limit) = (args.rate, args.orders);
        let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(1 + index as u64));
        let bot = format!("bot-{}", index % 8);
        clients.spawn(async move {
            loop {
                if limit > 0 && claimed.fetch_add(1, Relaxed) >= limit {
                    break;
                }
                if rate > 0.0 {
                    let slot = slots.fetch_add(1, Relaxed) as f64;
                    let at = began + Duration::from_secs_f64(slot / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                if Instant::now() >= stop_at {
                    break;
                }
                if let Err(failure) = one_order(&shared, &customer, &bot, &mut rng).await {
                    shared.failed(failure);
                }
            }
        });
    }
    let ticker = progress.clone().map(|bar| {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let done = shared.completed.load(Relaxed);
                let errors: u64 = lock(&shared.errors).values().sum();
                bar.set_position(
                    began
                        .elapsed()
                        .as_secs()
                        .min(bar.length().unwrap_or(u64::MAX)),
                );
                bar.set_message(format!("{done} orders completed, {errors} errors"));
            }
        })
    });
    while clients.join_next().await.is_some() {}
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let seconds = began.elapsed().as_secs_f64();
    let requests = shared.requests.load(Relaxed);
    let completed = shared.completed.load(Relaxed);
    Ok(Summary {
        seconds,
        clients: args.clients,
        requests,
        requests_per_second: requests as f64 / seconds,
        orders_started: shared.started.load(Relaxed),
        orders_completed: completed,
        orders_completed_per_second: completed as f64 / seconds,
        orders_lost: shared.lost.load(Relaxed),
        checkout_to_approved_ms: Percentiles::of(std::mem::take(&mut lock(&shared.approved_after))),
        checkout_to_completed_ms: Percentiles::of(std::mem::take(&mut lock(
            &shared.completed_after,
        ))),
        errors: lock(&shared.errors).clone(),
    })
}

/// A bar over the run's duration, on a terminal only.
fn progress_bar(args: &BusyworkArgs) -> Option<indicatif::ProgressBar> {
    if args.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(args.duration.as_secs().max(1));
    let style = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} s  {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}
