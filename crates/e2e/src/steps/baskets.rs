//! The baskets steps.

use crate::*;

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
