//! The protective and observational layers around every route: request ids, tracing, metrics,
//! the access log, load shedding, request timeouts, panics, CORS, gzip, sessions and the body
//! size limit.
//!
//! What every request needs is one hand-written service, [`Edge`], not a layer per concern: it
//! took `/health/live` from 113,922 to 30,353 instructions (BENCHMARKS.md, "2026-11-30, issue 16
//! (second part)"). CORS, gzip, sessions and the body limit stay tower layers, composed once.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::{ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE, TRANSFER_ENCODING};
use axum::http::{HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use futures::FutureExt;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::error::ApiError;
use crate::http::extract::BodyDeadline;
use crate::ops::log_writer::{self, Access};
use crate::ops::metrics::{self, Metrics};
use crate::ops::request_context::{self, RequestFields};
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps every route of `router` in the layers. Outermost first: [`Edge`] (request id, trace
/// span, metrics, access line, URI check, load shedding, timeout, panics, session-store
/// failures as 503, the `Secure` cookie flag), CORS when an origin is allowed, gzip, sessions
/// and their users (only where a request can use them), the body limit.
pub fn wrap(router: Router, state: &AppState) -> Router {
    let settings = &state.http;
    let edge = Arc::new(Edge {
        metrics: state.metrics.clone(),
        permits: Semaphore::new(settings.max_concurrency),
        request_timeout: settings.request_timeout,
        body_timeout: settings.body_timeout,
        state: state.clone(),
    });
    // With no origins allowed (the default) there is nothing for CORS to answer: no layer.
    let cors = (!settings.allowed_origins.is_empty()).then(|| cors(&settings.allowed_origins));
    router.layer(
        ServiceBuilder::new()
            .layer(EdgeLayer(edge))
            .option_layer(cors)
            .layer(GzipWhenAcceptedLayer { enabled: settings.gzip })
            .layer(crate::auth::sessions::WhenNeededLayer(crate::auth::sessions::layer(state)))
            .layer(DefaultBodyLimit::max(settings.body_limit)),
    )
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

/// What every request passes through first, whatever its route.
struct Edge {
    metrics: Arc<Metrics>,
    /// Requests being handled at most; past it, 503 at once rather than a queue.
    permits: Semaphore,
    request_timeout: Duration,
    /// How long a request's body may take to arrive (see [`BodyDeadline`]).
    body_timeout: Duration,
    state: AppState,
}

#[derive(Clone)]
struct EdgeLayer(Arc<Edge>);

impl<S> Layer<S> for EdgeLayer {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService { inner, edge: self.0.clone() }
    }
}

#[derive(Clone)]
struct EdgeService<S> {
    inner: S,
    edge: Arc<Edge>,
}

impl<S, B> Service<Request> for EdgeService<S>
where
    S: Service<Request, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The layers below are always ready; an error here would be a bug of theirs.
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => panic!("a layer below the edge failed: {e}"),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Everything that needs only the request is done here; the returned future holds the
    /// handler's future, not the service stack (which made it about 5 KB, moved several
    /// times per request).
    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let edge = self.edge.clone();
        // A caller's own id is kept (a proxy or client tracing the request); else a new one.
        let id = match request.headers().get(REQUEST_ID) {
            Some(id) if acceptable_request_id(id) => id.clone(),
            _ => new_request_id(),
        };
        let route = metrics::route_name(request.extensions().get::<MatchedPath>());
        let method = metrics::method_name(request.method());
        // Cheap to keep (its bytes are shared).
        let uri = request.uri().clone();
        let access = log_writer::access_wanted();
        let span = crate::ops::telemetry::request_spans().then(|| request_span(&id, method, route, request.uri()));
        let handling = self.handler(request);
        Box::pin(async move {
            let _in_flight = edge.metrics.in_flight();
            let response = match handling {
                Err(refused) => refused,
                Ok((handler, https)) => match edge.permits.try_acquire() {
                    Err(_) => ApiError::Overloaded.into_response(),
                    Ok(_permit) => {
                        let handled = AssertUnwindSafe(handler).catch_unwind();
                        let handled = tokio::time::timeout(edge.request_timeout, handled);
                        let outcome = match &span {
                            Some(span) => handled.instrument(span.clone()).await,
                            None => {
                                let fields = RequestFields { id: id.clone(), method, route, uri: uri.clone() };
                                request_context::scope(fields, handled).await
                            }
                        };
                        let response = response_of(outcome);
                        if https { secure_session_cookie(response) } else { response }
                    }
                },
            };
            Ok(edge.finish(response, Finished { started, id, route, method, uri: access.then_some(uri), span }))
        })
    }
}

impl<S, B> EdgeService<S>
where
    S: Service<Request, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    /// The handler's future and whether the request came over HTTPS, or the answer that
    /// refuses it at once (a path or query that decodes to nothing storable, a handler that
    /// panicked while its future was made). Making the future runs no handler code yet; it is
    /// dropped unpolled if the request is shed.
    #[inline]
    // The Result is taken apart at once by the caller; boxing the refusal would cost an
    // allocation for nothing.
    #[allow(clippy::result_large_err)]
    fn handler(&mut self, mut request: Request) -> Result<(S::Future, bool), Response<Body>> {
        if let Some(refused) = unstorable(request.uri()) {
            return Err(refused);
        }
        // Only a request that declares a body has one to wait for.
        let headers = request.headers();
        if headers.contains_key(CONTENT_LENGTH) || headers.contains_key(TRANSFER_ENCODING) {
            let deadline = BodyDeadline(tokio::time::Instant::now() + self.edge.body_timeout);
            request.extensions_mut().insert(deadline);
        }
        let https =
            crate::auth::extract::is_https(request.uri(), request.headers(), request.extensions(), &self.edge.state);
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(handler) => Ok((handler, https)),
            Err(_panic) => Err(ApiError::Internal("handler panicked".into()).into_response()),
        }
    }
}

/// The response of a handler run under a timeout and a panic guard, whatever became of it.
#[inline]
fn response_of<B, E: std::fmt::Display, P>(
    outcome: Result<Result<Result<Response<B>, E>, P>, tokio::time::error::Elapsed>,
) -> Response<Body>
where
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    match outcome {
        Ok(Ok(Ok(response))) => session_store_failures(response.map(Body::new)),
        Ok(Ok(Err(e))) => ApiError::Internal(e.to_string()).into_response(),
        Ok(Err(_panic)) => ApiError::Internal("handler panicked".into()).into_response(),
        // Dropping the handler cancels its work; an open transaction rolls back.
        Err(_elapsed) => ApiError::Timeout.into_response(),
    }
}

/// What the edge keeps of a request until its response is ready.
struct Finished {
    started: Instant,
    id: HeaderValue,
    route: &'static str,
    method: &'static str,
    /// Kept only when there will be an access line.
    uri: Option<Uri>,
    /// The request's span, when it has one (see `ops::request_context`).
    span: Option<tracing::Span>,
}

impl Edge {
    /// Records the response (span, metrics, access line) and gives it its request id.
    fn finish(&self, mut response: Response<Body>, request: Finished) -> Response<Body> {
        let Finished { started, id, route, method, uri, span } = request;
        let latency = started.elapsed();
        let status = response.status().as_u16();
        if let Some(span) = span.filter(|s| !s.is_disabled()) {
            span.record("http.response.status_code", status);
            if status >= 500 {
                span.record("otel.status_code", "ERROR");
            }
        }
        self.metrics.record_request(method, route, status, latency);
        if let (Some(uri), Ok(request_id)) = (uri, id.to_str()) {
            log_writer::access(&Access {
                status,
                latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                request_id,
                method,
                route,
                path: uri.path(),
            });
        }
        response.headers_mut().insert(REQUEST_ID, id);
        response
    }
}

/// One span per request; every log line inside it carries its id, method, route and path, and
/// the OpenTelemetry export (when on) names it `METHOD /route/{template}` with the
/// semantic-convention attributes. The export's own fields are only made when it is on: the
/// JSON log layer formats a span's fields as the span is made.
fn request_span(id: &HeaderValue, method: &str, route: &str, uri: &Uri) -> tracing::Span {
    let id = id.to_str().unwrap_or("-");
    if crate::ops::telemetry::traces_exported() {
        tracing::info_span!(
            "request",
            otel.name = %format_args!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %id,
            http.request.method = %method,
            http.route = %route,
            url.path = %uri.path(),
            http.response.status_code = tracing::field::Empty,
        )
    } else {
        tracing::info_span!(
            "request",
            request_id = id,
            http.request.method = method,
            http.route = route,
            url.path = uri.path(),
        )
    }
}

/// A random UUID (version 4) for a request without an id, from the thread's generator: as
/// unique as `Uuid::new_v4`, without its system call per request.
/// A caller's request id is kept when it is short and plain: at most 64 of `[A-Za-z0-9._-]`.
/// Anything else is replaced, never echoed or logged (a 400 KB id filled the log buffer and
/// pushed security lines out; a non-ASCII byte suppressed the access line).
fn acceptable_request_id(id: &HeaderValue) -> bool {
    let id = id.as_bytes();
    !id.is_empty() && id.len() <= 64 && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn new_request_id() -> HeaderValue {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    HeaderValue::from_bytes(&text).expect("hex digits and hyphens make a header value")
}

/// Paths and query strings that decode to a NUL character or to invalid UTF-8 can name nothing
/// we store (PostgreSQL refuses NUL in text outright), so they are refused here, once, in the
/// API's error shape: 404 for a path, 422 for a query string.
fn unstorable(uri: &Uri) -> Option<Response<Body>> {
    // A URI's raw text is ASCII without NUL (hyper refuses anything else): only an escape can
    // decode to something we cannot store. (`+` in a query decodes to a space: harmless.)
    let storable = |raw: &str| {
        if !raw.contains('%') {
            return true;
        }
        // Malformed escapes are kept as they are.
        percent_encoding::percent_decode_str(raw).decode_utf8().is_ok_and(|s| !s.contains('\0'))
    };
    if !storable(uri.path()) {
        return Some(ApiError::NotFound("route").into_response());
    }
    if let Some(query) = uri.query()
        && !storable(query)
    {
        return Some(ApiError::invalid("query", "must be UTF-8 without NUL characters").into_response());
    }
    None
}

/// The session layers answer a bare 500 when the session store fails (Redis down, say). Every
/// 500 of ours has a JSON body, so a bare one is theirs: say what happened, as a 503.
fn session_store_failures(response: Response<Body>) -> Response<Body> {
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR && !response.headers().contains_key(CONTENT_TYPE) {
        return ApiError::SessionUnavailable.into_response();
    }
    response
}

/// Marks the session cookie `Secure` on requests that came over HTTPS (directly, or through a
/// trusted proxy's `X-Forwarded-Proto`), so the browser never sends it over plain HTTP.
fn secure_session_cookie(mut response: Response<Body>) -> Response<Body> {
    let cookies: Vec<HeaderValue> = response.headers().get_all(SET_COOKIE).iter().cloned().collect();
    if cookies.iter().any(|c| c.as_bytes().starts_with(crate::auth::sessions::COOKIE.as_bytes())) {
        response.headers_mut().remove(SET_COOKIE);
        for cookie in cookies {
            let text = cookie.to_str().unwrap_or_default();
            let secured = if text.starts_with(crate::auth::sessions::COOKIE) && !text.contains("; Secure") {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            } else {
                cookie
            };
            response.headers_mut().append(SET_COOKIE, secured);
        }
    }
    response
}

/// gzip, for the requests that accept it: tower-http's layer answers the others unchanged, but
/// only after wrapping and boxing every response body (a tenth of `/health/live`'s
/// instructions when measured).
#[derive(Clone)]
struct GzipWhenAcceptedLayer {
    enabled: bool,
}

impl<S: Clone> Layer<S> for GzipWhenAcceptedLayer {
    type Service = GzipWhenAccepted<S>;

    fn layer(&self, inner: S) -> GzipWhenAccepted<S> {
        GzipWhenAccepted { inner, enabled: self.enabled }
    }
}

#[derive(Clone)]
struct GzipWhenAccepted<S> {
    inner: S,
    enabled: bool,
}

type ToBody<B> = fn(Response<B>) -> Response<Body>;

fn to_body<B>(response: Response<B>) -> Response<Body>
where
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    response.map(Body::new)
}

impl<S, B> Service<Request> for GzipWhenAccepted<S>
where
    S: Service<Request, Response = Response<B>> + Clone,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError> + Send + Sync,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = futures::future::Either<
        futures::future::MapOk<S::Future, ToBody<B>>,
        futures::future::MapOk<<Compression<S> as Service<Request>>::Future, ToBody<CompressionBody<B>>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use futures::TryFutureExt;
        if self.enabled && request.headers().contains_key(ACCEPT_ENCODING) {
            // The compression layer over the service made ready above (it has no state of its own).
            let ready = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, ready);
            let mut gzip = CompressionLayer::new().gzip(true).layer(inner);
            futures::future::Either::Right(gzip.call(request).map_ok(to_body as ToBody<CompressionBody<B>>))
        } else {
            futures::future::Either::Left(self.inner.call(request).map_ok(to_body as ToBody<B>))
        }
    }
}
