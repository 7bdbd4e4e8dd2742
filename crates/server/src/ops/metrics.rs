//! Prometheus metrics, one registry per app (no global state, so tests can run many apps).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Method;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use conduit_store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: &'static str,
}

/// The scheduled backups' figures: when the last one succeeded and was verified (Unix
/// seconds), its size and how long each took, and how many failed.
#[derive(Default)]
pub struct BackupGauges {
    pub last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub last_verified: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub size_bytes: Gauge,
    pub duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub verify_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub failures: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    in_flight: Gauge,
    logins: Family<LoginLabels, Counter>,
    pool_size: Family<PoolLabels, Gauge>,
    pool_idle: Family<PoolLabels, Gauge>,
    /// Mail queued by this instance's changes, and this instance's sends: sent, failed (to be
    /// retried), dead (out of tries, or refused for good).
    mail: [(&'static str, Counter); 4],
    /// Scheduled backups (see `crate::backup::schedule`).
    pub backups: BackupGauges,
    /// Notification streams open on this instance, as of the scrape (set by `/metrics`).
    pub notification_streams: Gauge,
    /// The request counter and histogram of each label set seen, found by the labels' addresses
    /// (they are interned): one lookup with a cheap hash per response instead of two with
    /// SipHash over the label strings.
    per_labels: RwLock<HashMap<LabelKey, (Counter, Histogram), BuildLabelHasher>>,
}

/// A label set by the addresses of its interned method and route, the route's length, and its
/// status. (Method names are not prefixes of one another.)
type LabelKey = (usize, usize, usize, u16);

/// Hashes a [`LabelKey`]: its parts are already well spread (addresses) or small (statuses).
#[derive(Default, Clone, Copy)]
struct BuildLabelHasher;

struct LabelHasher(u64);

impl std::hash::BuildHasher for BuildLabelHasher {
    type Hasher = LabelHasher;

    fn build_hasher(&self) -> LabelHasher {
        LabelHasher(0)
    }
}

impl std::hash::Hasher for LabelHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
}

/// Decrements the in-flight gauge when the request is done, however it ends.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("conduit");
        let requests = Family::<RequestLabels, Counter>::default();
        // 0.5 ms to ~8 s: local requests are fast; the top buckets catch timeouts.
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let in_flight = Gauge::default();
        let logins = Family::<LoginLabels, Counter>::default();
        let pool_size = Family::<PoolLabels, Gauge>::default();
        let pool_idle = Family::<PoolLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by method, route template and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("http_requests_in_flight", "HTTP requests being handled now", in_flight.clone());
        registry.register("logins", "Login attempts by result (success, failure)", logins.clone());
        registry.register("db_pool_connections", "Open database connections by pool", pool_size.clone());
        registry.register("db_pool_idle_connections", "Idle database connections by pool", pool_idle.clone());
        let mail = ["queued", "sent", "failed", "dead"].map(|state| (state, Counter::default()));
        for (state, counter) in &mail {
            let help = match *state {
                "queued" => "Mail messages queued in the outbox by this instance",
                "sent" => "Mail messages this instance sent",
                "failed" => "Failed sends by this instance that will be retried",
                _ => "Mail messages this instance gave up on (dead: see `conduit mail list --state dead`)",
            };
            registry.register(format!("mail_{state}"), help, counter.clone());
        }
        let backups = BackupGauges::default();
        let b = &backups;
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the last scheduled backup succeeded",
            b.last_success.clone(),
        );
        registry.register(
            "backup_last_verified_timestamp_seconds",
            "When the last scheduled backup was verified by restoring it",
            b.last_verified.clone(),
        );
        registry.register("backup_size_bytes", "The size of the last scheduled backup", b.size_bytes.clone());
        registry.register("backup_duration_seconds", "How long the last scheduled backup took", b.duration.clone());
        registry.register(
            "backup_verify_duration_seconds",
            "How long verifying the last scheduled backup took",
            b.verify_duration.clone(),
        );
        registry.register("backup_failures", "Scheduled backups or verifications that failed", b.failures.clone());
        let notification_streams = Gauge::default();
        registry.register(
            "notification_streams",
            "Notification streams (GET /api/notifications/stream) open on this instance",
            notification_streams.clone(),
        );
        Self {
            registry,
            backups,
            notification_streams,
            requests,
            latency,
            in_flight,
            logins,
            pool_size,
            pool_idle,
            mail,
            per_labels: RwLock::default(),
        }
    }
}

impl Metrics {
    /// The notification hub's counts (`notify::hub::Hub`: handed on by a write here, read back
    /// from the database), shown with the rest.
    pub fn with_notifications(mut self, handed: Counter, read: Counter) -> Self {
        self.registry.register(
            "notifications_handed",
            "Notifications handed to this instance's streams as a write here committed them",
            handed,
        );
        self.registry.register(
            "notifications_read",
            "Notifications handed to this instance's streams as read back from the database",
            read,
        );
        self
    }
}

impl Metrics {
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// One response; `method` and `route` from [`method_name`] and [`route_name`].
    pub fn record_request(&self, method: &'static str, route: &'static str, status: u16, elapsed: Duration) {
        // Address and length: two distinct strings can share an address only if one is a
        // prefix of the other.
        let key = (method.as_ptr() as usize, route.as_ptr() as usize, route.len(), status);
        if let Some((requests, latency)) = self.per_labels.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            requests.inc();
            latency.observe(elapsed.as_secs_f64());
            return;
        }
        let labels = RequestLabels { method, route, status };
        let (requests, latency) =
            (self.requests.get_or_create(&labels).clone(), self.latency.get_or_create(&labels).clone());
        requests.inc();
        latency.observe(elapsed.as_secs_f64());
        self.per_labels.write().unwrap_or_else(|p| p.into_inner()).insert(key, (requests, latency));
    }

    /// Requests this process answered since it started, and how many of them with a 5xx.
    pub fn request_totals(&self) -> (u64, u64) {
        let seen = self.per_labels.read().unwrap_or_else(|p| p.into_inner());
        seen.iter().fold((0, 0), |(all, failed), ((.., status), (requests, _))| {
            let n = requests.get();
            (all + n, if *status >= 500 { failed + n } else { failed })
        })
    }

    /// Mail this process queued, sent, failed to send and gave up on since it started.
    pub fn mail_totals(&self) -> Vec<(&'static str, u64)> {
        self.mail.iter().map(|(state, counter)| (*state, counter.get())).collect()
    }

    pub fn record_login(&self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.logins.get_or_create(&LoginLabels { result }).inc();
    }

    /// `n` more mail messages `queued`, `sent`, `failed` or `dead`.
    pub fn record_mail(&self, state: &str, n: u64) {
        if let Some((_, counter)) = self.mail.iter().find(|(s, _)| *s == state) {
            counter.inc_by(n);
        }
    }

    /// The text exposition, with pool figures read now.
    pub fn render(&self, store: &Arc<dyn Store>) -> String {
        for pool in store.pool_stats() {
            self.pool_size.get_or_create(&PoolLabels { pool: pool.name }).set(i64::from(pool.size));
            self.pool_idle.get_or_create(&PoolLabels { pool: pool.name }).set(pool.idle as i64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A request's method as a label: the standard ones by name, any other as `OTHER` (so a client
/// cannot make up new label values).
pub fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route template a request matched (`unmatched` for none), as a `'static` str, so that
/// labelling a response allocates nothing. The templates are the router's, a fixed set: each is
/// leaked once, the first time it is seen.
pub fn route_name(matched: Option<&MatchedPath>) -> &'static str {
    static ROUTES: RwLock<Option<HashSet<&'static str>>> = RwLock::new(None);
    let Some(path) = matched.map(MatchedPath::as_str) else {
        return "unmatched";
    };
    let known = ROUTES.read().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|r| r.get(path).copied());
    if let Some(route) = known {
        return route;
    }
    let mut routes = ROUTES.write().unwrap_or_else(|p| p.into_inner());
    let routes = routes.get_or_insert_with(HashSet::new);
    if let Some(route) = routes.get(path) {
        return route;
    }
    let route: &'static str = Box::leak(path.into());
    routes.insert(route);
    route
}
