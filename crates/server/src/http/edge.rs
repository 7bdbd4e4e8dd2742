//! The protective and observational layers around every route: request ids, tracing, metrics,
//! the access log, load shedding, request timeouts, panics, CORS, gzip, sessions and the body
//! size limit.
//!
//! What every request needs is one hand-written service, [`Edge`], not a layer per concern: it
//! took `/health/live` from 113,922 to 30,353 instructions (BENCHMARKS.md, "2026-11-30, issue 16
//! (second part)"). CORS, gzip, sessions and the body limit stay tower layers, composed once.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::{ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE, TRANSFER_ENCODING};
use axum::http::{HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use futures::FutureExt;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::compression::predicate::{And, DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::error::ApiError;
use crate::http::client_addr::{ClientIp, client_ip};
use crate::ops::log_writer::{self, Access};
use crate::ops::metrics::{self, Metrics};
use crate::ops::per_address::PerAddress;
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
        per_address: PerAddress::new(settings.max_requests_per_address),
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
    /// Requests in flight per client address (see [`PerAddress`]).
    per_address: Arc<PerAddress>,
    request_timeout: Duration,
    /// How long a request's body may take to arrive, from when its headers did; slower is 408.
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
    S: Service<Request, Response = Response<B>> + Clone + Send + 'static,
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
    /// times per request). A request with a body is the exception: its body is read first,
    /// so the future holds the stack until then.
    ///
    /// The order is what keeps slow clients cheap: a place among the client address's requests
    /// in flight first (else 429), then the whole body, under its deadline, then a slot of
    /// `CONDUIT_MAX_CONCURRENCY` (else 503), then the handler (which may take a place in the
    /// password-hash queue). A body sent a byte a second holds one of its address's places and
    /// a connection, never a slot or a hash-queue place.
    fn call(&mut self, mut request: Request) -> Self::Future {
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
        let finished = Finished { started, id, route, method, uri, access, span };
        let held = match client_of(&request, &self.edge.state) {
            Some(client) => {
                request.extensions_mut().insert(client);
                match self.edge.per_address.take(client.0) {
                    Some(held) => Some(held),
                    None => {
                        let has_body = has_body(&request);
                        return Box::pin(async move {
                            if has_body {
                                drain(request, &edge).await;
                            }
                            Ok(edge.finish(ApiError::AddressBusy.into_response(), finished))
                        });
                    }
                }
            }
            // Only a service called without connect info (a test's oneshot) has no client.
            None => None,
        };
        if has_body(&request) {
            let ready = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, ready);
            return Box::pin(async move {
                let _held = held;
                let response = match read_body(request, &edge).await {
                    Err(refused) => refused,
                    Ok(request) => edge.handle(handler(&mut inner, request, &edge.state), &finished).await,
                };
                Ok(edge.finish(response, finished))
            });
        }
        let handling = handler(&mut self.inner, request, &self.edge.state);
        Box::pin(async move {
            let _held = held;
            let response = edge.handle(handling, &finished).await;
            Ok(edge.finish(response, finished))
        })
    }
}

/// Whether `request` declares a body (only one that does has one to wait for).
#[inline]
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.get(CONTENT_LENGTH).is_some_and(|length| length != "0") || headers.contains_key(TRANSFER_ENCODING)
}

/// The client address of `request` (see `http::client_addr`), when it came over a connection.
#[inline]
fn client_of(request: &Request, state: &AppState) -> Option<ClientIp> {
    let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
    // A line that is not text names no address: it ends the walk like any other such entry.
    let forwarded = request.headers().get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("?"));
    Some(ClientIp(client_ip(peer.ip(), forwarded, &state.http.trusted_proxies)))
}

/// How much of a refused body is read and thrown away, as a multiple of the body limit, before
/// the refusal is answered (see [`read_body`]).
const DRAIN_FACTOR: usize = 4;

/// `request` with its whole body in memory, read under the body deadline and within the body
/// limit; or the answer that refuses it (413 past the limit, 408 past the deadline).
///
/// A body over the limit is still read to its end, and thrown away, up to [`DRAIN_FACTOR`]
/// times the limit, before the 413: answered unread, it reached a proxy that was still sending
/// it as a broken pipe, and nginx then answered its own 502 and took the instance out of
/// rotation for 10 s (two such requests took a site of two instances down).
async fn read_body(request: Request, edge: &Edge) -> Result<Request, Response<Body>> {
    let limit = edge.state.http.body_limit;
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let (parts, mut body) = request.into_parts();
    let read = async move {
        let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(limit));
        let (mut seen, mut over) = (0usize, declared.is_some_and(|length| length > limit));
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame.map_err(|e| ApiError::invalid("body", format!("could not be read: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            seen = seen.saturating_add(data.len());
            over |= seen > limit;
            if !over {
                kept.extend_from_slice(&data);
            } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                break;
            }
        }
        if over { Err(ApiError::TooLarge) } else { Ok(kept) }
    };
    match tokio::time::timeout(edge.body_timeout, read).await {
        Err(_elapsed) => Err(ApiError::BodyTimeout.into_response()),
        Ok(Err(refused)) => Err(refused.into_response()),
        Ok(Ok(kept)) => Ok(Request::from_parts(parts, Body::from(kept))),
    }
}

/// Reads and throws away what arrives of a refused request's body, up to
/// [`DRAIN_FACTOR`] times the body limit and at most until the body deadline, so that its
/// refusal reaches a proxy as an answer, not a broken pipe (see [`read_body`]).
async fn drain(request: Request, edge: &Edge) {
    let limit = edge.state.http.body_limit.saturating_mul(DRAIN_FACTOR);
    let mut body = request.into_body();
    let drained = async move {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
            seen = seen.saturating_add(frame.data_ref().map_or(0, |d| d.len()));
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(edge.body_timeout, drained).await;
}

/// The handler's future and whether the request came over HTTPS, or the answer that refuses it
/// at once (a path or query that decodes to nothing storable, a handler that panicked while its
/// future was made). Making the future runs no handler code yet; it is dropped unpolled if the
/// request is shed.
#[inline]
// The Result is taken apart at once by the caller; boxing the refusal would cost an allocation
// for nothing.
#[allow(clippy::result_large_err)]
fn handler<S, B>(inner: &mut S, request: Request, state: &AppState) -> Result<(S::Future, bool), Response<Body>>
where
    S: Service<Request, Response = Response<B>>,
{
    if let Some(refused) = unstorable(request.uri()) {
        return Err(refused);
    }
    let https = crate::auth::extract::is_https(request.uri(), request.headers(), request.extensions(), state);
    match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(request))) {
        Ok(handler) => Ok((handler, https)),
        Err(_panic) => Err(ApiError::Internal("handler panicked".into()).into_response()),
    }
}

impl Edge {
    /// Runs a handler (or answers its refusal) in a slot of `CONDUIT_MAX_CONCURRENCY`, under
    /// the request timeout and a panic guard, inside the request's span or context.
    async fn handle<F, B, E>(&self, handling: Result<(F, bool), Response<Body>>, request: &Finished) -> Response<Body>
    where
        F: Future<Output = Result<Response<B>, E>>,
        E: std::fmt::Display,
        B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let _in_flight = self.metrics.in_flight();
        let (handler, https) = match handling {
            Err(refused) => return refused,
            Ok(handling) => handling,
        };
        let Ok(_permit) = self.permits.try_acquire() else {
            return ApiError::Overloaded.into_response();
        };
        let handled = AssertUnwindSafe(handler).catch_unwind();
        let handled = tokio::time::timeout(self.request_timeout, handled);
        let outcome = match &request.span {
            Some(span) => handled.instrument(span.clone()).await,
            None => {
                let Finished { id, method, route, .. } = request;
                let fields = RequestFields { id: id.clone(), method, route, uri: request.uri.clone() };
                request_context::scope(fields, handled).await
            }
        };
        let response = response_of(outcome);
        if https { secure_session_cookie(response) } else { response }
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
    uri: Uri,
    /// Whether there will be an access line.
    access: bool,
    /// The request's span, when it has one (see `ops::request_context`).
    span: Option<tracing::Span>,
}

impl Edge {
    /// Records the response (span, metrics, access line) and gives it its request id.
    fn finish(&self, mut response: Response<Body>, request: Finished) -> Response<Body> {
        let Finished { started, id, route, method, uri, access, span } = request;
        let latency = started.elapsed();
        let status = response.status().as_u16();
        if let Some(span) = span.filter(|s| !s.is_disabled()) {
            span.record("http.response.status_code", status);
            if status >= 500 {
                span.record("otel.status_code", "ERROR");
            }
        }
        self.metrics.record_request(method, route, status, latency);
        if let (true, Ok(request_id)) = (access, id.to_str()) {
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

/// Marks the session cookies (the API's and the console's) `Secure` on requests that came over
/// HTTPS (directly, or through a trusted proxy's `X-Forwarded-Proto`), so the browser never
/// sends them over plain HTTP.
fn secure_session_cookie(mut response: Response<Body>) -> Response<Body> {
    use crate::auth::sessions::{CONSOLE_COOKIE, COOKIE};
    let ours = |text: &[u8]| text.starts_with(COOKIE.as_bytes()) || text.starts_with(CONSOLE_COOKIE.as_bytes());
    let cookies: Vec<HeaderValue> = response.headers().get_all(SET_COOKIE).iter().cloned().collect();
    if cookies.iter().any(|c| ours(c.as_bytes())) {
        response.headers_mut().remove(SET_COOKIE);
        for cookie in cookies {
            let text = cookie.to_str().unwrap_or_default();
            let secured = if ours(text.as_bytes()) && !text.contains("; Secure") {
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

/// What is gzipped: tower-http's default (bodies over 32 bytes but images, gRPC and event
/// streams), and not `application/octet-stream` either: a backup's download (the console) is as
/// large as the database, and gzipping it would hold a core for minutes.
type GzipPredicate = And<DefaultPredicate, NotForContentType>;

fn gzip_predicate() -> GzipPredicate {
    DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream"))
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
        futures::future::MapOk<<Compression<S, GzipPredicate> as Service<Request>>::Future, ToBody<CompressionBody<B>>>,
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
            let mut gzip = CompressionLayer::new().gzip(true).compress_when(gzip_predicate()).layer(inner);
            futures::future::Either::Right(gzip.call(request).map_ok(to_body as ToBody<CompressionBody<B>>))
        } else {
            futures::future::Either::Left(self.inner.call(request).map_ok(to_body as ToBody<B>))
        }
    }
}
