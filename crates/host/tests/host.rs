//! The process shell from outside: health, the REST error contract, limits, gRPC reflection,
//! background tasks and graceful shutdown. Backend-independent; runs on SQLite.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use axum::{Router, routing::post};
use host::{Config, Host, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Running {
    base: String,
    grpc: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap()
    }
}

#[derive(Debug, Deserialize)]
struct Greeting {
    #[serde(default)]
    name: String,
}

async fn greet(Json(greeting): Json<Greeting>) -> axum::Json<Value> {
    axum::Json(json!({ "hello": greeting.name }))
}

async fn start(configure: impl FnOnce(&mut Config), mount: impl FnOnce(&mut Host)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(db::Target::Sqlite(dir.path().to_owned()));
    configure(&mut config);
    let mut host = Host::new(config, &[]).await.unwrap();
    let routes = Router::new().route("/api/greet", post(greet)).route(
        "/api/slow",
        post(|| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            "slow"
        }),
    );
    host.rest(routes, utoipa::openapi::OpenApi::default());
    mount(&mut host);
    let base = format!("http://{}", host.http_addr());
    let grpc = host.grpc_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(host.run(async {
        let _ = stopped.await;
    }));
    Running {
        base,
        grpc,
        stop: Some(stop),
        done,
        _dir: dir,
    }
}

async fn body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn liveness_and_readiness_answer_200() {
    let app = start(|_| {}, |_| {}).await;
    let live = reqwest::get(format!("{}/liveness", app.base))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.text().await.unwrap(), ".");
    let (status, ready) = body(
        reqwest::get(format!("{}/readiness", app.base))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, ready),
        (
            200,
            json!({"status": "ready", "checks": {"database": "ok", "broker": "ok"}})
        )
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_failing_check_makes_readiness_503_and_names_it() {
    let app = start(
        |_| {},
        |host| {
            host.readiness_check("bus", || {
                Box::pin(async { Err("not connected".to_owned()) })
            })
        },
    )
    .await;
    let (status, ready) = body(
        reqwest::get(format!("{}/readiness", app.base))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(
        ready,
        json!({"status": "unavailable", "checks": {"database": "ok", "broker": "ok", "bus": "not connected"}})
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_get_the_gateway_json_404() {
    let app = start(|_| {}, |_| {}).await;
    let (status, error) = body(
        reqwest::get(format!("{}/api/nowhere", app.base))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error),
        (
            404,
            json!({"code": 5, "message": "Not Found", "details": []})
        )
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn json_bodies_are_read_like_grpc_gateway() {
    let app = start(|_| {}, |_| {}).await;
    let client = reqwest::Client::new();
    let post = |body: &'static str| {
        client
            .post(format!("{}/api/greet", app.base))
            .body(body)
            .send()
    };

    // No content type needed; unknown fields ignored; an empty body is `{}`.
    let (status, reply) = body(post(r#"{"name":"Ada","colour":"blue"}"#).await.unwrap()).await;
    assert_eq!((status, reply), (200, json!({"hello": "Ada"})));
    let (status, reply) = body(post("").await.unwrap()).await;
    assert_eq!((status, reply), (200, json!({"hello": ""})));

    // Malformed JSON and a type mismatch: 400, code 3, the decoder's text.
    for bad in [r#"{"name": "#, r#"{"name": 7}"#] {
        let (status, error) = body(post(bad).await.unwrap()).await;
        assert_eq!(
            (status, &error["code"], &error["details"]),
            (400, &json!(3), &json!([])),
            "{bad}: {error}"
        );
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let app = start(|config| config.request_body_limit = 64, |_| {}).await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(200));
    let response = reqwest::Client::new()
        .post(format!("{}/api/greet", app.base))
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, error) = body(response).await;
    assert_eq!((status, &error["code"]), (413, &json!(8)), "{error}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn slow_requests_time_out_with_504() {
    let app = start(
        |config| config.request_timeout = Duration::from_millis(100),
        |_| {},
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/slow", app.base))
        .send()
        .await
        .unwrap();
    let (status, error) = body(response).await;
    assert_eq!(
        (status, error),
        (
            504,
            json!({"code": 4, "message": "request timed out", "details": []})
        )
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let app = start(|_| {}, |_| {}).await;
    let slow = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/api/slow", app.base))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.stop().await.unwrap();
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.text().await.unwrap(), "slow");
}

#[tokio::test]
async fn a_task_that_overruns_the_shutdown_timeout_fails_the_run() {
    let app = start(
        |config| config.shutdown_timeout = Duration::from_millis(200),
        |host| {
            host.spawn("stubborn", |_token| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
        },
    )
    .await;
    let error = app.stop().await.unwrap_err().to_string();
    assert!(
        error.contains("shutdown took longer than SHUTDOWN_TIMEOUT"),
        "{error}"
    );
}

#[tokio::test]
async fn background_tasks_stop_on_shutdown() {
    let (seen_stop, saw_stop) = oneshot::channel();
    let app = start(
        |_| {},
        |host| {
            host.spawn("polite", |token| async move {
                token.cancelled().await;
                let _ = seen_stop.send(());
                Ok(())
            })
        },
    )
    .await;
    app.stop().await.unwrap();
    saw_stop.await.unwrap();
}

#[tokio::test]
async fn a_failing_background_task_stops_the_process_with_its_error() {
    let app = start(
        |_| {},
        |host| {
            host.spawn("doomed", |_token| async {
                anyhow::bail!("lost the connection")
            })
        },
    )
    .await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), app.done)
        .await
        .unwrap()
        .unwrap();
    let error = format!("{:#}", outcome.unwrap_err());
    assert!(
        error.contains("background task doomed") && error.contains("lost the connection"),
        "{error}"
    );
}

#[tokio::test]
async fn grpc_reflection_lists_every_service() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = start(|_| {}, |_| {}).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    // No module is mounted here: reflection must not claim services this process lacks.
    assert_eq!(names, ["grpc.reflection.v1.ServerReflection"]);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_reflection_descriptors_know_every_module_service() {
    let fds =
        <prost_types::FileDescriptorSet as prost::Message>::decode(proto::FILE_DESCRIPTOR_SET)
            .unwrap();
    let services: Vec<String> = fds
        .file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect();
    for expected in [
        "storespb.StoresService",
        "customerspb.CustomersService",
        "basketspb.BasketService",
        "paymentspb.PaymentsService",
        "orderingpb.OrderingService",
        "depotpb.DepotService",
        "notificationspb.NotificationsService",
        "searchpb.SearchService",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing from {services:?}"
        );
    }
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(db::Target::Sqlite(dir.path().to_owned()));
    config.web_port = taken.local_addr().unwrap().port();
    let error = format!("{:#}", Host::new(config, &[]).await.err().unwrap());
    assert!(
        error.starts_with("cannot listen for HTTP (WEB_HOST/WEB_PORT) on 127.0.0.1:"),
        "{error}"
    );
}

#[tokio::test]
async fn service_addresses_come_from_rpc_services_or_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(db::Target::Sqlite(dir.path().to_owned()));
    config
        .rpc_services
        .0
        .insert("STORES".into(), "stores:9000".into());
    let host = Host::new(config, &[]).await.unwrap();
    assert_eq!(host.service_address("stores"), "stores:9000");
    assert_eq!(
        host.service_address("CUSTOMERS"),
        host.grpc_addr().to_string()
    );
    host.channel("CUSTOMERS").unwrap();
}

#[tokio::test]
async fn an_unreachable_nats_starts_anyway_and_reports_not_ready() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = start(
        |config| config.nats_url = Some(format!("nats://127.0.0.1:{dead}")),
        |_| {},
    )
    .await;
    let (status, ready) = body(
        reqwest::get(format!("{}/readiness", app.base))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &ready["checks"]["database"]),
        (503, &json!("ok")),
        "{ready}"
    );
    assert!(
        ready["checks"]["broker"]
            .as_str()
            .unwrap()
            .starts_with("NATS connection"),
        "{ready}"
    );
    app.stop().await.unwrap();
}

/// Counts StoreCreated messages into `seen`.
struct Counter(tokio::sync::mpsc::UnboundedSender<String>);

#[async_trait::async_trait]
impl messaging::Handler for Counter {
    async fn handle(
        &self,
        _tx: &mut db::Conn,
        message: &messaging::Incoming,
    ) -> Result<(), messaging::HandlerError> {
        let _ = self.0.send(message.id().to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn modules_relay_and_subscribe_through_the_host() {
    let (seen, mut received) = tokio::sync::mpsc::unbounded_channel();
    let outbox = messaging::Outbox::new("shop");
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::new(
        Config::for_tests(db::Target::Sqlite(dir.path().to_owned())),
        &["shop"],
    )
    .await
    .unwrap();
    host.db()
        .migrate("shop", &messaging::MIGRATIONS)
        .await
        .unwrap();
    host.relay(outbox.clone());
    let subject = proto::stores::STORE_AGGREGATE_CHANNEL;
    host.subscribe(
        messaging::Subscription::new("shop", "shop-stores", subject),
        Counter(seen),
    );
    let db = host.db().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(host.run(async {
        let _ = stopped.await;
    }));

    let message = messaging::Message::new(
        subject,
        proto::stores::STORE_CREATED_EVENT,
        &proto::stores::StoreCreated::default(),
    );
    let id = message.id().to_owned();
    let mut tx = db.begin().await.unwrap();
    outbox.stage(&mut tx, [message]).await.unwrap();
    tx.commit().await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap();
    assert_eq!(delivered, Some(id));
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn swagger_ui_and_the_openapi_document_are_served_without_a_network() {
    let app = start(|_| {}, |_| {}).await;
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = root.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(
        (
            redirect.status().as_u16(),
            redirect.headers()["location"].to_str().unwrap()
        ),
        (307, "/swagger-ui/")
    );
    let page = reqwest::get(format!("{}/swagger-ui/", app.base))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text().await.unwrap().contains("swagger-ui"),
        "the vendored UI is served"
    );
    let (status, doc) = body(
        reqwest::get(format!("{}/openapi.json", app.base))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &doc["info"]["title"]), (200, &json!("MallBots")));
    assert!(
        doc["components"]["schemas"]["ErrorBody"].is_object(),
        "{doc}"
    );
    app.stop().await.unwrap();
}
