//! The request a task is handling, for the JSON log lines written while it does.
//!
//! A `tracing` span per request would carry these fields too, but the JSON log layer formats a
//! span's fields as the span is made, whether or not anything is logged inside it: a tenth of a
//! cached read's instructions (BENCHMARKS.md, the framework ceiling). So the span is made only
//! when something reads it (trace export, the text log); otherwise the request's fields sit in
//! a task-local, and the JSON event formatter (`ops::telemetry`) adds them to the few lines
//! logged inside a request, in the same place a span's fields would be (`spans`).

use axum::http::{HeaderValue, Uri};

tokio::task_local! {
    static REQUEST: RequestFields;
}

/// What every log line inside a request says about it.
pub struct RequestFields {
    pub id: HeaderValue,
    pub method: &'static str,
    pub route: &'static str,
    pub uri: Uri,
}

/// Runs `handling` as the task's current request.
pub async fn scope<F: Future>(fields: RequestFields, handling: F) -> F::Output {
    REQUEST.scope(fields, handling).await
}

/// The current request's fields as a JSON object, the same members as the request span's, or
/// `None` outside a request.
pub fn current_json() -> Option<String> {
    REQUEST
        .try_with(|request| {
            let mut json = String::with_capacity(160);
            let members = [("request_id", request.id.to_str().unwrap_or("-")), ("http.request.method", request.method)]
                .into_iter()
                .chain([("http.route", request.route), ("url.path", request.uri.path())]);
            for (i, (name, value)) in members.enumerate() {
                json.push_str(if i == 0 { "{\"" } else { ",\"" });
                json.push_str(name);
                json.push_str("\":");
                // Writing to a String cannot fail.
                let _ = crate::ops::log_writer::json_string(&mut json, value);
            }
            json.push('}');
            json
        })
        .ok()
}
