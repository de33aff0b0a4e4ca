//! [`Api`]: the mall's REST API as tests call it.

use crate::*;

/// A client of the mall's REST API wherever it runs: an in-process [`TestApp`] (which derefs
/// to one) or the gateway of a mall run as separate processes.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
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
