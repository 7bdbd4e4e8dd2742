//! Logs and traces. Logs are `tracing` events, as JSON lines (default when stdout is not a
//! terminal) or pretty text. When the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, spans are also exported over OTLP/HTTP
//! (protobuf); the other standard `OTEL_*` variables (headers, timeout, service name, batch
//! settings) are honoured by the OpenTelemetry SDK.

use std::io::IsTerminal;

use anyhow::Context;
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat};
use crate::log_writer::LogWriter;

/// Keeps the span exporter alive; [`Telemetry::shutdown`] flushes what is still buffered.
#[must_use]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    logs: LogWriter,
}

impl Telemetry {
    /// Exports the last spans and writes the last log lines. Call outside the async runtime:
    /// the exporter's HTTP client blocks.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("conduit: warning: could not flush traces: {e}");
        }
        self.logs.drain(std::time::Duration::from_secs(2));
    }
}

fn otlp_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// Sets up logging and, when configured, trace export. Must run outside the async runtime (the
/// OTLP exporter builds a blocking HTTP client).
pub fn init(config: &Config) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter (RUST_LOG) '{}': {e}", config.log_filter))?;
    let format =
        config.log_format.unwrap_or(if std::io::stdout().is_terminal() { LogFormat::Pretty } else { LogFormat::Json });
    // Lines go to stdout through a thread of their own (see `log_writer.rs`).
    let writer = LogWriter::spawn(std::io::stdout());
    crate::log_writer::enable_access_log(writer.clone(), format == LogFormat::Json);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            // The request's fields are in `spans` (every span the line is inside, outermost
            // first); repeating the innermost as `span` cost a second serialization per line.
            .with_current_span(false)
            .fmt_fields(LoggedSpanFields)
            .with_writer(writer.clone())
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().with_writer(writer.clone()).boxed(),
    };
    let provider = if otlp_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .context("cannot set up the OTLP trace exporter (check OTEL_EXPORTER_OTLP_ENDPOINT)")?;
        let mut resource = Resource::builder();
        if std::env::var("OTEL_SERVICE_NAME").is_err() {
            resource = resource.with_service_name("conduit");
        }
        Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
    } else {
        None
    };
    let traces = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("conduit")));
    // Already set (tests, or an embedding program): keep that one.
    let _ = tracing_subscriber::registry().with(logs).with(traces).with(filter).try_init();
    Ok(Telemetry { provider, logs: writer })
}

/// The span fields repeated on every log line of a request: its id, method, route and path. The
/// others (`otel.*`, and the status code recorded when the response is ready) are
/// for the trace exporter and the access line carries the status itself. The JSON formatter
/// formats a span's fields when the span is made and parses and re-formats them whenever one is
/// recorded, whether or not anything is ever logged in the span; on `/health/live` that was
/// about a fifth of the request's instructions (BENCHMARKS.md, the framework ceiling).
struct LoggedSpanFields;

const LOGGED_SPAN_FIELDS: [&str; 4] = ["request_id", "http.request.method", "http.route", "url.path"];

struct KeptFields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for KeptFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if LOGGED_SPAN_FIELDS.contains(&field.name()) {
            self.0.insert(field.name().to_owned(), value.into());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if LOGGED_SPAN_FIELDS.contains(&field.name()) {
            self.0.insert(field.name().to_owned(), format!("{value:?}").into());
        }
    }
}

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for LoggedSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut kept = KeptFields(serde_json::Map::new());
        fields.record(&mut kept);
        write!(writer, "{}", serde_json::Value::Object(kept.0))
    }

    /// Fields recorded later (the status code) are none of the logged ones: nothing to redo.
    fn add_fields(
        &self,
        _current: &'writer mut tracing_subscriber::fmt::FormattedFields<Self>,
        _fields: &tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        Ok(())
    }
}
