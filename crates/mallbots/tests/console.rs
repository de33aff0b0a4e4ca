//! The console in a real browser (headless Chromium through ChromeDriver), against the
//! release-shaped binary with `busywork` running beside it: a new checkout appears on the board
//! within a second and reaches `completed`; its timeline lists every saga step in order; a
//! dead letter made by a broken handler is replayed from the console and takes effect once;
//! the page reconnects after a server restart and carries on; the browser logs no errors.
//! With `MALLBOTS_SCREENSHOTS=<dir>`, it saves the board and a timeline there (docs/img).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "support/browser.rs"]
mod browser;
#[path = "support/processes.rs"]
mod processes;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use browser::Browser;
use serde_json::{Value, json};
use testkit::Api;

/// The create-order saga and the order's life, as the timeline must list them, in order.
const LIFE: &[&str] = &[
    "basketsapi.BasketCheckedOut",
    "ordersapi.OrderCreated",
    "customersapi.AuthorizeCustomer",
    "depotapi.CreateShoppingListCommand",
    "depotapi.CreatedShoppingListReply",
    "paymentsapi.ConfirmPayment",
    "depotapi.InitiateShoppingCommand",
    "ordersapi.ApproveOrder",
    "ordersapi.OrderApproved",
    "depotapi.ShoppingListCompleted",
    "ordersapi.OrderReadied",
    "paymentsapi.InvoicePaid",
    "ordersapi.OrderCompleted",
];

fn status_on_board(browser: &Browser, order: &str) -> Value {
    browser.run(
        "const card = document.querySelector(`#columns [data-order=\"${arguments[0]}\"]`);
         return card ? card.closest('.column').dataset.status : null;",
        &[json!(order)],
    )
}

fn errors(browser: &Browser) -> Vec<String> {
    browser
        .log()
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .map(|(_, message)| message)
        .collect()
}

fn save(name: &str, png: &[u8]) {
    if let Ok(dir) = std::env::var("MALLBOTS_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

#[test]
fn the_console_shows_the_mall_live_in_a_browser() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let env = [("DATA_DIR", data_dir.as_str())];
    let mall = processes::start("mall", &[], &env);
    let base = format!("http://{}", mall.http);
    let api = Api::new(&base);
    let browser = Browser::start();
    browser.goto(&format!("{base}/console"));
    let live = "return document.querySelector('#conn').dataset.state === 'live';";
    browser.until(Duration::from_secs(10), live, &[]);

    // Customers shopping meanwhile.
    let mut busywork = Command::new(env!("CARGO_BIN_EXE_mallbots"))
        .args(["busywork", "--url", &base, "--clients", "2", "--rate", "2"])
        .args(["--duration", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // One order of ours, watched from checkout to completed.
    let shop = runtime.block_on(api.mall(1000.0));
    let order = runtime.block_on(api.checkout(&shop, 2));
    let checked_out = Instant::now();
    let appear =
        "return document.querySelector(`#columns [data-order=\"${arguments[0]}\"]`) !== null;";
    browser.until(Duration::from_secs(5), appear, &[json!(order)]);
    let seen_after = checked_out.elapsed();
    assert!(
        seen_after <= Duration::from_secs(1),
        "the checkout took {seen_after:?} to appear on the board"
    );
    runtime.block_on(api.pick(&order));
    runtime.block_on(api.pay(&order));
    let started = Instant::now();
    while status_on_board(&browser, &order) != json!("completed") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "order {order} is {} on the board",
            status_on_board(&browser, &order)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2)); // busywork fills the columns for the picture
    save("console-board.png", &browser.screenshot());

    // Its timeline, opened from the board.
    browser.run(
        "document.querySelector(`#columns [data-order=\"${arguments[0]}\"]`).click();",
        &[json!(order)],
    );
    let steps = "const rows = [...document.querySelectorAll('#steps tbody tr')].map(r => r.dataset.name);
                 return rows.includes('ordersapi.OrderCompleted') && document.querySelectorAll('#saga tbody tr').length > 1 ? rows : null;";
    let listed: Vec<String> =
        serde_json::from_value(browser.until(Duration::from_secs(10), steps, &[])).unwrap();
    let mut expected = LIFE.iter().peekable();
    for name in &listed {
        if expected.peek().is_some_and(|next| **next == name.as_str()) {
            expected.next();
        }
    }
    assert_eq!(
        expected.next(),
        None,
        "timeline out of order or incomplete: {listed:?}"
    );
    let replies = listed
        .iter()
        .filter(|name| name.contains("Reply") || name.starts_with("am."))
        .count();
    assert_eq!(
        replies, 5,
        "a reply to each of the five commands: {listed:?}"
    );
    save("console-timeline.png", &browser.screenshot());
    assert_eq!(errors(&browser), Vec::<String>::new());

    // On a phone's width nothing runs off the side: the board stacks, tables scroll in place.
    browser.resize(390, 844);
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth;";
    assert_eq!(
        browser.run(fits, &[]),
        json!(true),
        "the timeline at 390 px"
    );
    browser.goto(&format!("{base}/console#board"));
    browser.until(Duration::from_secs(10), live, &[]);
    // Any cards: ours may have left the 12 latest completed by now, busywork goes on.
    let cards = "return document.querySelectorAll('#columns .card').length > 0;";
    browser.until(Duration::from_secs(5), cards, &[]);
    assert_eq!(browser.run(fits, &[]), json!(true), "the board at 390 px");
    browser.resize(1280, 800);

    // A dead letter: search's orders table gone, its handler fails until dead-lettered.
    let rename = |from: &str, to: &str| {
        runtime.block_on(async {
            let target = db::Target::Sqlite(data.path().to_owned());
            let db = db::Db::connect(&target, &["search"], &db::Options::default())
                .await
                .unwrap();
            sqlx::query(db::AssertSqlSafe(format!(
                "ALTER TABLE search.{from} RENAME TO {to}"
            )))
            .execute(db.pool())
            .await
            .unwrap();
            db.close().await;
        });
    };
    browser.goto(&format!("{base}/console#operations"));
    browser.until(Duration::from_secs(10), live, &[]);
    rename("orders", "orders_offline");
    let broken = runtime.block_on(api.checkout(&shop, 1));
    let dead = "return [...document.querySelectorAll('#dead-letters tbody tr[data-id]')]
                  .some(row => row.textContent.includes('search-orders')) || null;";
    browser.until(Duration::from_secs(30), dead, &[]);
    rename("orders_offline", "orders");
    // Replays every dead letter of search, as an operator clicks through them.
    let replay = "const button = [...document.querySelectorAll('#dead-letters tr[data-id]')]
                    .filter(row => row.textContent.includes('search-orders'))
                    .map(row => row.querySelector('button.replay')).find(b => b && !b.disabled);
                  if (button) button.click();
                  return [...document.querySelectorAll('#dead-letters tr[data-id]')]
                    .every(row => !row.textContent.includes('search-orders'));";
    browser.until(Duration::from_secs(30), replay, &[]);
    let once = runtime.block_on(async {
        let target = db::Target::Sqlite(data.path().to_owned());
        let db = db::Db::connect(&target, &["search"], &db::Options::default())
            .await
            .unwrap();
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM search.order_products WHERE order_id = $1")
                .bind(&broken)
                .fetch_one(db.pool())
                .await
                .unwrap();
        db.close().await;
        count
    });
    assert_eq!(once, 1, "the replayed order is in search once");
    assert_eq!(errors(&browser), Vec::<String>::new());

    // A restart under the open page: it reconnects and carries on.
    browser.goto(&format!("{base}/console"));
    browser.until(Duration::from_secs(10), live, &[]);
    let port = mall.http.rsplit(':').next().unwrap().to_owned();
    let (_, status, _) = mall.stop();
    assert!(status.success());
    let gone = "return document.querySelector('#conn').dataset.state === 'reconnecting';";
    browser.until(Duration::from_secs(10), gone, &[]);
    let env = [("DATA_DIR", data_dir.as_str()), ("WEB_PORT", port.as_str())];
    let mall = processes::start("mall again", &[], &env);
    browser.until(Duration::from_secs(15), live, &[]);
    let after = runtime.block_on(api.checkout(&shop, 1));
    browser.until(Duration::from_secs(5), appear, &[json!(after)]);
    // While the server was down the page's requests were refused; nothing else went wrong.
    let unexpected: Vec<String> = errors(&browser)
        .into_iter()
        .filter(|message| !message.contains("ERR_CONNECTION_REFUSED"))
        .collect();
    assert_eq!(unexpected, Vec::<String>::new());

    let _ = busywork.kill();
    let _ = busywork.wait();
    let (_, status, log) = mall.stop();
    assert!(status.success(), "{log:#?}");
}
