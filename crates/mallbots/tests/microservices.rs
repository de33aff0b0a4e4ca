//! The microservices deployment (the book's chapter 11): each module in a `mallbots` process of
//! its own with its own PostgreSQL database, NATS JetStream between them, gRPC for the few
//! synchronous calls (`RPC_SERVICES`), and `mallbots gateway` in front. Every feature of the
//! `e2e` crate runs through the gateway; then every process must stop cleanly on SIGTERM. With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, one checkout is one trace across all ten processes.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; a skip is said on stderr"
)]

#[path = "support/processes.rs"]
mod processes;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use db::Backend;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{KeyValue, any_value},
    trace::v1::ResourceSpans,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_services_behind_a_gateway_keep_every_feature() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let mall = processes::microservices(&[]).await;
    let api = testkit::Api::new(&mall.url);
    ready(&api).await;
    let (status, body) = api
        .json(
            reqwest::Method::GET,
            "/api/nowhere",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!((status, &body["code"]), (404, &serde_json::json!(5)));
    // Sent raw: an HTTP client would resolve the dots before sending.
    for escape in [
        "/api/stores/../../metrics",
        "/api/stores/%2e%2e/%2e%2e/metrics",
    ] {
        let answer = raw_get(&mall.url, escape).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{escape}: {answer}");
    }

    e2e::run(api.clone(), "nine services behind the gateway").await;

    // The console through the gateway: its page, its board, its event stream passed through
    // as it is written (not buffered to the end, which never comes).
    let page = api.get("/console").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("MallBots console"));
    let answer = raw_get(&mall.url, "/console/../metrics").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let (status, board) = api
        .json(
            reqwest::Method::GET,
            "/api/console/board",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{board}");
    let mut live = api.get("/api/console/live").await;
    assert_eq!(live.status(), 200);
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), live.chunk())
        .await
        .expect("the gateway passes the stream's first event at once")
        .unwrap()
        .unwrap();
    assert!(first.starts_with(b"event: summary"), "{first:?}");
    drop(live);

    stop(mall);
}

/// The status line and headers of `GET path` sent byte for byte to `url`.
async fn raw_get(url: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

async fn ready(api: &testkit::Api) {
    testkit::until(|| async {
        let (status, body) = api
            .json(reqwest::Method::GET, "/readiness", serde_json::Value::Null)
            .await;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("the gateway never got ready: {body}"))
        }
    })
    .await;
}

/// SIGTERM to every process, gateway first; each must exit 0.
fn stop(mall: processes::Microservices) {
    let processes::Microservices {
        processes,
        guards: _guards,
        ..
    } = mall;
    for process in processes.into_iter().rev() {
        let (name, status, log) = process.stop();
        assert!(status.success(), "{name} exited with {status}: {log:#?}");
    }
}

/// An OTLP/gRPC trace receiver on loopback: what a collector would get.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ResourceSpans>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .lock()
            .unwrap()
            .extend(request.into_inner().resource_spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(value) => Some(value.clone()),
            _ => None,
        }
    })
}

impl Collector {
    /// The services that sent spans of the trace containing the span with `route`.
    fn services_in_trace_of(&self, route: &str) -> BTreeSet<String> {
        let received = self.0.lock().unwrap();
        let spans = || {
            received.iter().flat_map(|resource| {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|r| text(&r.attributes, "service.name"))
                    .unwrap_or_default();
                resource
                    .scope_spans
                    .iter()
                    .flat_map(|scope| &scope.spans)
                    .map(move |span| (service.clone(), span))
            })
        };
        let Some(trace) = spans()
            .find(|(_, span)| text(&span.attributes, "http.route").as_deref() == Some(route))
            .map(|(_, span)| span.trace_id.clone())
        else {
            return BTreeSet::new();
        };
        spans()
            .filter(|(_, span)| span.trace_id == trace)
            .map(|(service, _)| service)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_is_one_trace_across_the_processes() {
    if !db::testing::is_selected(Backend::Postgres) {
        eprintln!("postgres not selected by {}", db::testing::BACKENDS_VAR);
        return;
    }
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let mall = processes::microservices(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        // Export every 100 ms rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let api = testkit::Api::new(&mall.url);
    ready(&api).await;
    let shop = api.mall(100.0).await;
    let order = api.checkout(&shop, 1).await;
    api.order_is(&order, "approved").await;

    let expected: BTreeSet<String> = ["gateway"]
        .iter()
        .chain(&testkit::CHECKOUT_REACHES)
        .map(|name| format!("mallbots-{name}"))
        .collect();
    testkit::until(|| async {
        let reached = collector.services_in_trace_of("/api/baskets/{id}/checkout");
        if expected.is_subset(&reached) {
            Ok(())
        } else {
            Err(format!(
                "the checkout's trace reached {reached:?}, not yet {:?}",
                expected.difference(&reached).collect::<Vec<_>>()
            ))
        }
    })
    .await;
    stop(mall);
}
