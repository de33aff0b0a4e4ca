//! The orders, depot, payments, notifications and search steps.

use crate::*;

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
