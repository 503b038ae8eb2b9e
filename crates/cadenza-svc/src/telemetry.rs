//! Logs, traces and metrics for a process, configured the same way by every service.
//!
//! * Logs: `tracing` to stderr, text or JSON.
//! * Traces: OpenTelemetry, exported over OTLP/gRPC only when an endpoint is configured (off by
//!   default: nothing is sent anywhere unless asked).
//! * Metrics: Prometheus text on `--metrics-addr` (see [`crate::metrics`]).

use clap::{Args, ValueEnum};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Telemetry flags shared by every binary.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log filter, e.g. `info` or `cadenza=debug,rdkafka=warn`.
    #[arg(
        long,
        global = true,
        env = "CADENZA_LOG",
        default_value = "warn,cadenza=info"
    )]
    pub log: String,
    /// Log line format.
    #[arg(long, global = true, env = "CADENZA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Export traces over OTLP/gRPC to this endpoint (e.g. http://otel-collector:4317). Off when unset.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Flushes pending spans when dropped (keep it alive for the life of `main`).
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Install the global subscriber. `service` names the process in traces. Must be called
/// inside a Tokio runtime when an OTLP endpoint is set (the batch exporter runs on it).
pub fn init(service: &str, args: &TelemetryArgs) -> TelemetryGuard {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|e| {
        eprintln!(
            "warning: bad --log filter {:?} ({e}); using `info`",
            args.log
        );
        EnvFilter::new("info")
    });
    let provider = args.otlp_endpoint.as_deref().and_then(|endpoint| {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build();
        match exporter {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name(service.to_owned())
                            .build(),
                    )
                    .build(),
            ),
            Err(e) => {
                eprintln!(
                    "warning: OTLP exporter to {endpoint} could not be built ({e}); traces are off"
                );
                None
            }
        }
    });
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service.to_owned())));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match args.log_format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json()).try_init(),
    };
    if let Err(e) = result {
        // Already installed (tests start several services in one process): keep the first.
        tracing::debug!("telemetry already initialised: {e}");
    }
    TelemetryGuard { provider }
}
