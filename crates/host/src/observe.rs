//! What an operator sees of a process: a span and metrics for every HTTP request, a span for
//! every gRPC call (joined to the caller's trace), the trace context on outgoing gRPC calls,
//! and `/metrics` in Prometheus' text format.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use crate::queues::Queues;
use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::Injector;
use tracing::Instrument as _;

/// Latency buckets (seconds) of every `_seconds` histogram: from a cached read to a timeout.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `outbox_pending_messages`, `outbox_oldest_pending_age_seconds`, `consumer_lag_messages`.
async fn gauge(queues: &Queues) {
    let report = queues.report().await;
    let now = db::now_micros();
    for depth in report.outboxes {
        let Some(pending) = depth.pending else {
            continue;
        };
        let age = depth
            .oldest_pending_at
            .map_or(0.0, |at| (now - at).max(0) as f64 / 1e6);
        metrics::gauge!("outbox_pending_messages", "module" => depth.module).set(pending as f64);
        metrics::gauge!("outbox_oldest_pending_age_seconds", "module" => depth.module).set(age);
    }
    for consumer in report.consumers {
        if let Some(lag) = consumer.lag {
            metrics::gauge!("consumer_lag_messages",
                "module" => consumer.module, "consumer" => consumer.consumer)
            .set(lag as f64);
        }
    }
}

/// The process's Prometheus recorder, installed on first use. `None` when another recorder
/// was installed first (a program embedding the host with its own metrics).
pub(crate) fn recorder() -> Option<&'static PrometheusHandle> {
    static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Drains histogram buffers between scrapes, so an unscraped process does not grow.
pub(crate) async fn upkeep(stop: tokio_util::sync::CancellationToken) {
    let Some(recorder) = recorder() else { return };
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => recorder.run_upkeep(),
        }
    }
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(queues): State<Option<Arc<Queues>>>) -> Response {
    if let Some(queues) = queues {
        gauge(&queues).await;
    }
    let body = recorder().map(PrometheusHandle::render).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Paths probed or scraped every few seconds: counted, but not traced (each would be a trace
/// of its own, drowning the ones that matter).
const UNTRACED: [&str; 3] = ["/liveness", "/readiness", "/metrics"];

/// A method as a metric label, from a closed set: a client inventing methods must not grow
/// the metrics (each label value is a series kept for the life of the process).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *method {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: a server span joined to the caller's trace, and `http_requests_total` /
/// `http_request_duration_seconds` by method, route template and status.
pub(crate) async fn http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let span = if UNTRACED.contains(&route.as_str()) {
        tracing::Span::none()
    } else {
        let span = tracing::info_span!("HTTP request", otel.name = format!("{method} {route}"),
            otel.kind = "server", module = module_of_route(&route), http.request.method = %method,
            http.route = %route, http.response.status_code = tracing::field::Empty);
        telemetry::adopt(&span, &telemetry::HeadersRef(request.headers()));
        span
    };
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(),
        "status" => status.to_string())
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `/api/baskets/{id}` → `baskets`; anything else is the host's own.
fn module_of_route(route: &str) -> &str {
    route
        .strip_prefix("/api/")
        .and_then(|rest| rest.split('/').next())
        .filter(|module| !module.is_empty() && !module.starts_with('{'))
        .unwrap_or("host")
}

/// `/customerspb.CustomersService/GetCustomer` → `customers`.
fn module_of_rpc(path: &str) -> &str {
    let package = path
        .trim_start_matches('/')
        .split('.')
        .next()
        .unwrap_or_default();
    package.strip_suffix("pb").unwrap_or(package)
}

/// The span of each gRPC call this process serves, in the caller's trace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrpcSpan;

impl<B> tower_http::trace::MakeSpan<B> for GrpcSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        let path = request.uri().path();
        if path.starts_with("/grpc.") {
            // Reflection and health: tooling, not business.
            return tracing::Span::none();
        }
        let span = tracing::info_span!(
            "gRPC call",
            otel.name = path.trim_start_matches('/'),
            otel.kind = "server",
            module = module_of_rpc(path),
            rpc.method = path
        );
        telemetry::adopt(&span, &telemetry::HeadersRef(request.headers()));
        span
    }
}

/// A gRPC channel to another module whose calls carry the caller's trace context and this
/// process's credentials.
pub type Channel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Outgoing>;

/// What every outgoing call carries.
#[derive(Clone)]
pub struct Outgoing(Option<Arc<crate::auth::token::Outgoing>>);

/// Wraps `channel` so every call carries the current trace context and `credentials`.
pub(crate) fn traced(
    channel: tonic::transport::Channel,
    credentials: Option<Arc<crate::auth::token::Outgoing>>,
) -> Channel {
    tonic::service::interceptor::InterceptedService::new(channel, Outgoing(credentials))
}

impl tonic::service::Interceptor for Outgoing {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        telemetry::inject(&mut GrpcMetadata(request.metadata_mut()));
        if let Some(value) = self.0.as_ref().and_then(|c| c.header())
            && let Ok(value) = tonic::metadata::MetadataValue::try_from(value)
        {
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

struct GrpcMetadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for GrpcMetadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        let invented = axum::http::Method::from_bytes(b"BREW").unwrap_or_default();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&axum::http::Method::PUT), "PUT");
    }

    #[test]
    fn spans_name_the_module_a_route_or_call_belongs_to() {
        assert_eq!(module_of_route("/api/baskets/{id}/checkout"), "baskets");
        assert_eq!(module_of_route("/api/stores"), "stores");
        assert_eq!(module_of_route("/readiness"), "host");
        assert_eq!(module_of_route("/api/{*path}"), "host");
        assert_eq!(
            module_of_rpc("/customerspb.CustomersService/AuthorizeCustomer"),
            "customers"
        );
        assert_eq!(module_of_rpc("/storespb.StoresService/GetStore"), "stores");
    }
}
