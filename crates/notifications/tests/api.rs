//! Notifications through the running app (with customers), on each backend. Ordering is not
//! mounted: its events are published here as it would publish them.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use messaging::Message;
use proto::ordering as pb;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, TestApp, spawn_app};

db::backend_tests!(
    customers_hear_about_their_orders_once,
    a_number_change_is_confirmed_on_the_new_number,
    a_webhook_gets_every_notification_in_order_despite_failures,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app(&["customers", "notifications"], backend).await
}

async fn customer(app: &TestApp) -> String {
    let (_, body) = app
        .json(
            Method::POST,
            "/api/customers",
            json!({"name": "Ada", "smsNumber": "555-0100"}),
        )
        .await;
    body["id"].as_str().unwrap().to_owned()
}

/// The customer's notification kinds, oldest first, once there are `count`.
async fn kinds(app: &TestApp, customer: &str, count: usize) -> Vec<Value> {
    let path = &format!("/api/notifications?customerId={customer}");
    testkit::until(|| async move {
        let (_, body) = app.json(Method::GET, path, Value::Null).await;
        let mut list = body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if list.len() >= count {
            list.reverse();
            Ok(list)
        } else {
            Err(format!("{count} notifications never arrived: {body}"))
        }
    })
    .await
}

/// ordering's OrderCreated for `order` of `customer`, as ordering would publish it.
fn order_created(order: &str, customer: &str) -> Message {
    let created = pb::OrderCreated {
        id: order.into(),
        customer_id: customer.into(),
        ..Default::default()
    };
    Message::new(
        pb::ORDER_AGGREGATE_CHANNEL,
        pb::ORDER_CREATED_EVENT,
        &created,
    )
    .about(order)
}

async fn customers_hear_about_their_orders_once(backend: Backend) {
    let app = app(backend).await;
    let customer = customer(&app).await;
    let created = order_created("o1", &customer);
    app.publish(&created).await;
    app.publish_as(&created, "redelivered").await;
    let ready = pb::OrderReadied {
        id: "o1".into(),
        customer_id: customer.clone(),
        ..Default::default()
    };
    app.publish(
        &Message::new(pb::ORDER_AGGREGATE_CHANNEL, pb::ORDER_READIED_EVENT, &ready).about("o1"),
    )
    .await;
    let canceled = pb::OrderCanceled {
        id: "o2".into(),
        customer_id: customer.clone(),
        ..Default::default()
    };
    app.publish(
        &Message::new(
            pb::ORDER_AGGREGATE_CHANNEL,
            pb::ORDER_CANCELED_EVENT,
            &canceled,
        )
        .about("o2"),
    )
    .await;
    let nobody = pb::OrderCreated {
        id: "o3".into(),
        customer_id: "nobody".into(),
        ..Default::default()
    };
    app.publish(
        &Message::new(
            pb::ORDER_AGGREGATE_CHANNEL,
            pb::ORDER_CREATED_EVENT,
            &nobody,
        )
        .about("o3"),
    )
    .await;

    let list = kinds(&app, &customer, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list_again = kinds(&app, &customer, 3).await;
    assert_eq!(
        list_again.len(),
        3,
        "the redelivered event notified once: {list_again:?}"
    );
    let summary: Vec<(&str, &str)> = list
        .iter()
        .map(|n| (n["kind"].as_str().unwrap(), n["orderId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("order_created", "o1"),
            ("order_ready", "o1"),
            ("order_canceled", "o2")
        ]
    );
    assert_eq!(
        list[1]["text"],
        "Hi Ada, your order o1 is ready for pickup."
    );
    assert_eq!(list[1]["smsNumber"], "555-0100");
    assert_eq!(
        app.json(Method::GET, "/api/notifications", Value::Null)
            .await
            .0,
        400
    );
}

async fn a_number_change_is_confirmed_on_the_new_number(backend: Backend) {
    let app = app(backend).await;
    let customer = customer(&app).await;
    app.json(
        Method::PUT,
        &format!("/api/customers/{customer}/change-sms"),
        json!({"smsNumber": "555-0199"}),
    )
    .await;
    let list = kinds(&app, &customer, 1).await;
    assert_eq!(
        (&list[0]["kind"], &list[0]["smsNumber"]),
        (&json!("sms_changed"), &json!("555-0199"))
    );
}

const WEBHOOK_SECRET: &str = "the receiver's shared secret";

/// Whether `headers` sign `body` as the mall does: HMAC-SHA256 of `<timestamp>.<body>`.
fn signed(headers: &axum::http::HeaderMap, body: &[u8]) -> bool {
    use hmac::{KeyInit as _, Mac as _};
    let (Some(timestamp), Some(signature)) = (
        headers
            .get("x-mallbots-timestamp")
            .and_then(|v| v.to_str().ok()),
        headers
            .get("x-mallbots-signature")
            .and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let Some(hex) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Some(claimed) = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&claimed).is_ok()
}

/// A webhook receiver that refuses its first call and any unsigned one, then records every
/// notification.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;
    let seen: Seen = std::sync::Arc::default();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let router = axum::Router::new()
        .route(
            "/hook",
            post(
                |State((seen, calls)): State<(
                    Seen,
                    std::sync::Arc<std::sync::atomic::AtomicU32>,
                )>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    if !signed(&headers, &body) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    seen.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    StatusCode::OK
                },
            ),
        )
        .with_state((seen.clone(), calls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

async fn a_webhook_gets_every_notification_in_order_despite_failures(backend: Backend) {
    let (url, seen) = receiver().await;
    let app = testkit::spawn_app_with(&["customers", "notifications"], backend, |config| {
        config.notifications_webhook = Some(url);
        config.notifications_webhook_secret = Some(WEBHOOK_SECRET.into());
    })
    .await;
    let customer = customer(&app).await;
    for order in ["o1", "o2"] {
        app.publish(&order_created(order, &customer)).await;
    }
    let started = Instant::now();
    while seen.lock().unwrap().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the webhook got {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let orders: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|n| n["orderId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        orders,
        ["o1", "o2"],
        "in order, each once, after the receiver's refusal"
    );
}

/// A receiver that redirects elsewhere is not followed: customers' numbers go only where the
/// operator said.
#[tokio::test]
async fn a_redirecting_webhook_is_not_followed() {
    use axum::{http::StatusCode, response::Redirect, routing::post};
    let followed = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let redirected = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (f, r) = (followed.clone(), redirected.clone());
    let router = axum::Router::new()
        .route(
            "/hook",
            post(move || async move {
                r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Redirect::temporary("/elsewhere")
            }),
        )
        .route(
            "/elsewhere",
            post(move || async move {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                StatusCode::OK
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = testkit::spawn_app_with(&["customers", "notifications"], Backend::Sqlite, |c| {
        c.notifications_webhook = Some(url);
    })
    .await;
    let customer = customer(&app).await;
    app.publish(&order_created("o1", &customer)).await;
    testkit::until(|| async {
        let tries = redirected.load(std::sync::atomic::Ordering::SeqCst);
        if tries >= 2 {
            Ok(())
        } else {
            Err(format!("the webhook was tried {tries} times"))
        }
    })
    .await;
    assert_eq!(followed.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// An HTTPS receiver with a certificate of the test's own CA, counting deliveries.
async fn https_receiver(
    dir: &std::path::Path,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
    db::testing::certificates(dir);
    host::install_crypto_provider();
    let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { axum::http::StatusCode::OK }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/hook",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            });
        }
    });
    (url, seen)
}

/// The webhook speaks HTTPS, trusting the operator's CA beside the system's.
#[tokio::test]
async fn the_webhook_delivers_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = https_receiver(dir.path()).await;
    let ca = dir.path().join("ca.pem");
    let app = testkit::spawn_app_with(&["customers", "notifications"], Backend::Sqlite, |c| {
        c.notifications_webhook = Some(url);
        c.notifications_webhook_ca = Some(ca);
    })
    .await;
    let customer = customer(&app).await;
    app.publish(&order_created("o1", &customer)).await;
    testkit::until(|| async {
        match seen.load(std::sync::atomic::Ordering::SeqCst) {
            0 => Err("nothing arrived over HTTPS".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
}
