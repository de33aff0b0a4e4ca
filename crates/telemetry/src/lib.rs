//! Trace context across process boundaries, and the layer that records `tracing` spans as
//! OpenTelemetry spans.
//!
//! Every hop of an order — an HTTP request, a gRPC call, a message staged in an outbox and
//! handled in another module — carries the W3C `traceparent`/`tracestate` of the span that
//! caused it, so one checkout is one trace across every module it reaches. Without the
//! OpenTelemetry [`layer`] installed, spans have no trace context: nothing is written into
//! headers or metadata, and a hop costs nothing extra.

use std::collections::BTreeMap;

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator as _},
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{Layer, filter::LevelFilter, registry::LookupSpan};

/// The W3C header and metadata key of the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Writes the current span's trace context into `carrier`; nothing when it has none.
pub fn inject(carrier: &mut dyn Injector) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, carrier);
    }
}

/// Makes `span` a child of the trace context in `carrier`, when there is one.
pub fn adopt(span: &tracing::Span, carrier: &dyn Extractor) {
    let context = TraceContextPropagator::new().extract(carrier);
    if context.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer records the span: then there is nothing to join.
        let _ = span.set_parent(context);
    }
}

/// Message metadata (and any other string map) as a carrier.
pub struct Map<'a>(pub &'a mut BTreeMap<String, String>);

impl Injector for Map<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Read-only message metadata as a carrier.
pub struct MapRef<'a>(pub &'a BTreeMap<String, String>);

impl Extractor for MapRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// HTTP (and gRPC) headers as a carrier.
pub struct Headers<'a>(pub &'a mut http::HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::try_from(key),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Read-only headers as a carrier.
pub struct HeadersRef<'a>(pub &'a http::HeaderMap);

impl Extractor for HeadersRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes `span` a child of the span `traceparent` names (as kept beside an outbox row, so
/// the relay's publish joins the trace without decoding the message).
pub fn adopt_traceparent(span: &tracing::Span, traceparent: &str) {
    let map = BTreeMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    adopt(span, &MapRef(&map));
}

/// The layer that records info-level spans (and the events inside them) through `provider`.
/// Its own filter keeps it independent of how verbose the logs are.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("mallbots"))
        .with_threads(false)
        .with_filter(LevelFilter::INFO)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceId;
    use opentelemetry_sdk::trace::InMemorySpanExporter;
    use tracing_subscriber::prelude::*;

    use super::*;

    fn recording() -> (InMemorySpanExporter, SdkTracerProvider) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        (exporter, provider)
    }

    #[test]
    fn a_message_handled_elsewhere_joins_the_trace_that_staged_it() {
        let (exporter, provider) = recording();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let mut metadata = BTreeMap::new();
            tracing::info_span!("checkout").in_scope(|| inject(&mut Map(&mut metadata)));
            let handled = tracing::info_span!("handle");
            adopt(&handled, &MapRef(&metadata));
            drop(handled);
            let published = tracing::info_span!("publish");
            adopt_traceparent(&published, &metadata[TRACEPARENT]);
            drop(published);
        });
        let spans = exporter.get_finished_spans().expect("spans");
        let trace = |name: &str| -> TraceId {
            spans
                .iter()
                .find(|span| span.name == name)
                .map(|span| span.span_context.trace_id())
                .expect("span recorded")
        };
        assert_eq!(trace("handle"), trace("checkout"));
        assert_eq!(trace("publish"), trace("checkout"));
        let checkout = spans
            .iter()
            .find(|span| span.name == "checkout")
            .expect("checkout");
        let handle = spans
            .iter()
            .find(|span| span.name == "handle")
            .expect("handle");
        assert_eq!(handle.parent_span_id, checkout.span_context.span_id());
    }

    #[test]
    fn without_the_layer_nothing_is_written() {
        let mut metadata = BTreeMap::new();
        tracing::info_span!("checkout").in_scope(|| inject(&mut Map(&mut metadata)));
        assert!(metadata.is_empty());
    }

    #[test]
    fn headers_carry_the_context_both_ways() {
        let (exporter, provider) = recording();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let mut headers = http::HeaderMap::new();
            tracing::info_span!("client").in_scope(|| inject(&mut Headers(&mut headers)));
            assert!(headers.contains_key(TRACEPARENT));
            let server = tracing::info_span!("server");
            adopt(&server, &HeadersRef(&headers));
        });
        let spans = exporter.get_finished_spans().expect("spans");
        assert_eq!(spans.len(), 2);
        assert_eq!(
            spans[0].span_context.trace_id(),
            spans[1].span_context.trace_id()
        );
    }
}
