//! Logging and tracing for the process: `tracing` to stderr, filtered by `LOG_LEVEL`, pretty
//! or JSON; spans exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
//! standard `OTEL_*` variables configure the exporter), and nothing exported otherwise.

use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer as _, fmt, prelude::*};

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
    let logs = match format {
        LogFormat::Pretty => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    };
    let provider = match std::env::var(OTLP_ENDPOINT) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(otlp()?),
        _ => None,
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(provider.as_ref().map(telemetry::layer))
        .try_init()?;
    Ok(Telemetry { provider })
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
