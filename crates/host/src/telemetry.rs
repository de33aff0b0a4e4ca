//! Logging and tracing for the process: `tracing` to stderr, filtered by `LOG_LEVEL`, pretty
//! or JSON; spans exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
//! standard `OTEL_*` variables configure the exporter), and nothing exported otherwise.

use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*, registry::LookupSpan};

use crate::LogFormat;

/// The endpoint variable that turns span export on.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// What [`init`] set up; [`Telemetry::shutdown`] flushes spans not yet exported.
#[must_use = "call shutdown before exiting, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing spans at exit failed");
        }
    }
}

/// Installs the global subscriber. Call once, from `main`, inside the Tokio runtime (the OTLP
/// exporter's channel lives there); tests leave it alone or install their own.
///
/// # Errors
/// A subscriber is already installed, the filter is invalid, or the exporter cannot be built.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::builder().parse(level)?;
    let provider = match std::env::var(OTLP_ENDPOINT) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(otlp()?),
        _ => None,
    };
    match &provider {
        // LOG_LEVEL filters everything: what it leaves out is never even built.
        None => tracing_subscriber::registry()
            .with(filter)
            .with(logs(format))
            .try_init()?,
        // Spans are recorded for export whatever the logs show: the filter is the log's alone.
        Some(provider) => tracing_subscriber::registry()
            .with(logs(format).with_filter(filter))
            .with(telemetry::layer(provider))
            .try_init()?,
    }
    Ok(Telemetry { provider })
}

fn logs<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    match format {
        LogFormat::Pretty => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    }
}

fn otlp() -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    // The builder reads the endpoint, headers and timeout from the OTEL_* variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .build()?;
    let resource = match std::env::var("OTEL_SERVICE_NAME") {
        Ok(_) => Resource::builder().build(),
        Err(_) => Resource::builder().with_service_name("mallbots").build(),
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
