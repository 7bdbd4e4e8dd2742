//! The protective and observational layers around every route: request ids, tracing, metrics,
//! CORS, gzip, load shedding, request timeouts, panics, and the body size limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::BodyDeadline;
use crate::metrics::Metrics;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in every layer. Outermost first: request id, trace span, response id,
/// metrics, CORS, gzip, load shedding, timeout, body deadline, session-store failures as 503, the `Secure`
/// cookie flag, sessions and their users, panic catcher, body limit.
pub fn wrap(router: Router, state: &AppState) -> Router {
    let settings = &state.http;
    let metrics: Arc<Metrics> = state.metrics.clone();
    let permits = Arc::new(Semaphore::new(settings.max_concurrency));
    let timeout = settings.request_timeout;
    router
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
        .layer(crate::sessions::layer(state))
        .layer(middleware::from_fn_with_state(state.clone(), secure_cookie_over_https))
        .layer(middleware::from_fn(session_store_failures))
        .layer(middleware::from_fn(reject_unstorable_uris))
        .layer(middleware::from_fn_with_state(settings.body_timeout, body_deadline))
        .layer(middleware::from_fn_with_state(timeout, request_timeout))
        .layer(middleware::from_fn_with_state(permits, shed_load))
        .layer(CompressionLayer::new().gzip(settings.gzip))
        // With no origins allowed (the default) there is nothing for CORS to answer: no layer.
        .layer(tower::util::option_layer(
            (!settings.allowed_origins.is_empty()).then(|| cors(&settings.allowed_origins)),
        ))
        .layer(middleware::from_fn_with_state(metrics, record_metrics))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(request_span).on_response(record_response))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// One span per request; every log line inside it carries these fields, and the OpenTelemetry
/// export names it `METHOD /route/{template}` with the semantic-convention attributes.
fn request_span(req: &Request) -> tracing::Span {
    let id = req.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().as_str();
    tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        request_id = %id,
        http.request.method = %method,
        http.route = %route,
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
    )
}

/// Completes the request span for the trace exporter; the access line itself is written by
/// `record_metrics`, which has the request at hand.
fn record_response(response: &Response, _latency: Duration, span: &tracing::Span) {
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([axum::http::header::AUTHORIZATION, axum::http::header::CONTENT_TYPE])
        .allow_credentials(true)
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600))
}

/// Paths and query strings that decode to a NUL character or to invalid UTF-8 can name nothing
/// we store (PostgreSQL refuses NUL in text outright), so they are refused here, once, in the
/// API's error shape: 404 for a path, 422 for a query string.
async fn reject_unstorable_uris(req: Request, next: Next) -> Response {
    let storable = |raw: &str| {
        let decoded: Vec<u8> = percent_decode(raw.as_bytes());
        std::str::from_utf8(&decoded).is_ok_and(|s| !s.contains('\0'))
    };
    if !storable(req.uri().path()) {
        return ApiError::NotFound("route").into_response();
    }
    if let Some(query) = req.uri().query()
        && !storable(&query.replace('+', " "))
    {
        return ApiError::invalid("query", "must be UTF-8 without NUL characters").into_response();
    }
    next.run(req).await
}

/// `%XX` escapes decoded; malformed escapes kept as they are.
fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(h), Some(l)) = (raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// The session layers answer a bare 500 when the session store fails (Redis down, say). Every
/// 500 of ours has a JSON body, so a bare one is theirs: say what happened, as a 503.
async fn session_store_failures(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() == axum::http::StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(axum::http::header::CONTENT_TYPE)
    {
        return ApiError::SessionUnavailable.into_response();
    }
    response
}

/// Marks the session cookie `Secure` on requests that came over HTTPS (directly, or through a
/// trusted proxy's `X-Forwarded-Proto`), so the browser never sends it over plain HTTP.
async fn secure_cookie_over_https(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let https = crate::auth::is_https(req.uri(), req.headers(), req.extensions(), &state);
    let mut response = next.run(req).await;
    if https {
        let cookies: Vec<HeaderValue> = response.headers().get_all(SET_COOKIE).iter().cloned().collect();
        if cookies.iter().any(|c| c.as_bytes().starts_with(crate::sessions::COOKIE.as_bytes())) {
            response.headers_mut().remove(SET_COOKIE);
            for cookie in cookies {
                let text = cookie.to_str().unwrap_or_default();
                let secured = if text.starts_with(crate::sessions::COOKIE) && !text.contains("; Secure") {
                    HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
                } else {
                    cookie
                };
                response.headers_mut().append(SET_COOKIE, secured);
            }
        }
    }
    response
}

async fn body_deadline(State(limit): State<Duration>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(BodyDeadline(tokio::time::Instant::now() + limit));
    next.run(req).await
}

async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        // Dropping the handler cancels its work; an open transaction rolls back.
        Err(_) => ApiError::Timeout.into_response(),
    }
}

async fn shed_load(State(permits): State<Arc<Semaphore>>, req: Request, next: Next) -> Response {
    match permits.try_acquire() {
        Ok(_permit) => next.run(req).await,
        Err(_) => ApiError::Overloaded.into_response(),
    }
}

async fn record_metrics(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = Instant::now();
    let _in_flight = metrics.in_flight();
    // What the access line needs of the request, kept only when there will be one.
    let logged = crate::log_writer::access_wanted().then(|| {
        let id = req.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok());
        (id.unwrap_or("-").to_owned(), req.uri().path().to_owned())
    });
    let response = next.run(req).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    metrics.record_request(method.as_str(), &route, status, latency);
    if let Some((request_id, path)) = logged {
        crate::log_writer::access(&crate::log_writer::Access {
            status,
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            request_id: &request_id,
            method: method.as_str(),
            route: &route,
            path: &path,
        });
    }
    response
}
