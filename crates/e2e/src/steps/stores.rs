//! The stores and products steps.

use crate::*;

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
