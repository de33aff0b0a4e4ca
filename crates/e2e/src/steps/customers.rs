//! The customers steps.

use crate::*;

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
