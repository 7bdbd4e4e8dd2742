//! Logs and traces. Logs are `tracing` events, as JSON lines (default when stdout is not a
//! terminal) or pretty text. When the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, spans are also exported over OTLP/HTTP
//! (protobuf); the other standard `OTEL_*` variables (headers, timeout, service name, batch
//! settings) are honoured by the OpenTelemetry SDK.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat};
use crate::ops::log_writer::LogWriter;

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

/// Whether spans are exported (set once, at start-up): the request span carries the export's
/// own fields only then.
static TRACES_EXPORTED: AtomicBool = AtomicBool::new(false);
/// Whether the log is text, whose lines name the spans they are in (set once, at start-up).
static TEXT_LOG: AtomicBool = AtomicBool::new(false);

pub fn traces_exported() -> bool {
    TRACES_EXPORTED.load(Ordering::Relaxed)
}

/// Whether a request needs a `tracing` span: for the trace export, or for the text log. The
/// JSON log adds the request's fields to its lines itself (see `ops::request_context`).
pub fn request_spans() -> bool {
    traces_exported() || TEXT_LOG.load(Ordering::Relaxed)
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
    // Lines go to stdout through a thread of their own (see `ops::log_writer`).
    let writer = LogWriter::spawn(std::io::stdout());
    crate::ops::log_writer::enable_access_log(writer.clone(), format == LogFormat::Json);
    TEXT_LOG.store(format == LogFormat::Pretty, Ordering::Relaxed);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            // The request's fields are in `spans` (every span the line is inside, outermost
            // first); repeating the innermost as `span` cost a second serialization per line.
            .with_current_span(false)
            .fmt_fields(LoggedSpanFields)
            .map_event_format(RequestJson)
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
        TRACES_EXPORTED.store(true, Ordering::Relaxed);
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

/// Writes the kept fields as a JSON object's members, as they are visited. The names are
/// ours and need no escaping.
struct KeptFields<'a, 'writer> {
    writer: &'a mut tracing_subscriber::fmt::format::Writer<'writer>,
    first: bool,
    result: std::fmt::Result,
}

impl KeptFields<'_, '_> {
    fn keep(&mut self, field: &tracing::field::Field, value: &str) {
        let separator = if std::mem::take(&mut self.first) { "{\"" } else { ",\"" };
        self.result = self.result.and_then(|()| {
            self.writer.write_str(separator)?;
            self.writer.write_str(field.name())?;
            self.writer.write_str("\":")?;
            crate::ops::log_writer::json_string(&mut *self.writer, value)
        });
    }
}

impl tracing::field::Visit for KeptFields<'_, '_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if LOGGED_SPAN_FIELDS.contains(&field.name()) {
            self.keep(field, value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if LOGGED_SPAN_FIELDS.contains(&field.name()) {
            self.keep(field, &format!("{value:?}"));
        }
    }
}

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for LoggedSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut kept = KeptFields { writer: &mut writer, first: true, result: Ok(()) };
        fields.record(&mut kept);
        let (first, result) = (kept.first, kept.result);
        result?;
        writer.write_str(if first { "{}" } else { "}" })
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

/// The JSON event format, plus the fields of the request the event happened in when it has no
/// request span (see `ops::request_context`): they go first in `spans`, as the span's would.
struct RequestJson<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for RequestJson<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(request) = crate::ops::request_context::current_json() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, tracing_subscriber::fmt::format::Writer::new(&mut line), event)?;
        writer.write_str(&with_request(&line, &request))
    }
}

/// `line` (one JSON object and its newline) with `request` first in its `spans`.
fn with_request(line: &str, request: &str) -> String {
    const SPANS: &str = "\"spans\":[";
    if let Some(at) = line.find(SPANS) {
        let (head, tail) = line.split_at(at + SPANS.len());
        let separator = if tail.starts_with(']') { "" } else { "," };
        format!("{head}{request}{separator}{tail}")
    } else if let Some(end) = line.rfind('}') {
        let (head, tail) = line.split_at(end);
        format!("{head},{SPANS}{request}]{tail}")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::with_request;

    #[test]
    fn the_request_goes_first_in_spans() {
        let request = r#"{"request_id":"r-1"}"#;
        assert_eq!(
            with_request("{\"message\":\"x\"}\n", request),
            "{\"message\":\"x\",\"spans\":[{\"request_id\":\"r-1\"}]}\n"
        );
        assert_eq!(
            with_request("{\"spans\":[{\"name\":\"store\"}],\"message\":\"x\"}\n", request),
            "{\"spans\":[{\"request_id\":\"r-1\"},{\"name\":\"store\"}],\"message\":\"x\"}\n"
        );
        assert_eq!(with_request("{\"spans\":[]}", request), "{\"spans\":[{\"request_id\":\"r-1\"}]}");
    }
}
