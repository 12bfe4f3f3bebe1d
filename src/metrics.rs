//! Prometheus metrics, served as text at `/metrics`: tokens issued, refusals by reason, password
//! check duration and queue depth, the verified-credential cache's hit ratio, lockouts, directory
//! (LDAP) operation latency and errors by directory, and HTTP latency by route and status. Values that live elsewhere (queue, cache) are read at scrape time.

use std::cell::RefCell;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::auth::password::Verifier;

/// Latency buckets: 100 µs doubling to about 3.3 s, for token requests and argon2 checks alike.
const LATENCY_BUCKETS: (f64, f64, u16) = (0.000_1, 2.0, 16);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuedLabels {
    realm: String,
    method: String,
    /// The MUNGE platform, empty for other methods.
    platform: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectoryOperationLabels {
    directory: String,
    /// `connect`, `bind` or `search`.
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectoryErrorLabels {
    directory: String,
    /// `connect`, `timeout`, `connection`, `result`, `service_bind` or `busy`.
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: u16,
}

fn latency_histogram() -> Histogram {
    let (start, factor, count) = LATENCY_BUCKETS;
    Histogram::new(exponential_buckets(start, factor, count))
}

/// The HTTP latency series one worker has answered requests on, as handles into the shared family:
/// after the first request of a route and status, observing costs no label allocation, no hashing
/// and no family lock. Routes and statuses are few (the route table, `unmatched`, our status codes).
pub struct HttpSeries {
    family: Family<RouteLabels, Histogram, fn() -> Histogram>,
    seen: RefCell<Vec<(u16, Box<str>, Histogram)>>,
}

impl HttpSeries {
    /// A request on `route` was answered with `status` after `seconds`.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        let mut seen = self.seen.borrow_mut();
        let known = seen
            .iter()
            .position(|(s, r, _)| *s == status && **r == *route);
        let index = known.unwrap_or_else(|| {
            let labels = RouteLabels {
                route: route.to_owned(),
                status,
            };
            let histogram = self.family.get_or_create(&labels).clone();
            seen.push((status, route.into(), histogram));
            seen.len() - 1
        });
        seen[index].2.observe(seconds);
    }
}

/// Every series, registered once per process.
pub struct Metrics {
    registry: Registry,
    issued: Family<IssuedLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    password_checks: Histogram,
    queue_depth: Gauge,
    cache_hit_ratio: Gauge<f64, AtomicU64>,
    lockouts: Counter,
    directory_operations: Family<DirectoryOperationLabels, Histogram, fn() -> Histogram>,
    directory_errors: Family<DirectoryErrorLabels, Counter>,
    http: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every series.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("portcullis");
        let issued = Family::<IssuedLabels, Counter>::default();
        registry.register(
            "tokens_issued",
            "Tokens issued, by realm, authentication method and MUNGE platform",
            issued.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "denials",
            "Token requests refused, by reason",
            refused.clone(),
        );
        let password_checks = latency_histogram();
        registry.register(
            "password_check_duration_seconds",
            "Time to check a password, queueing included (near zero on a cache hit)",
            password_checks.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "password_check_queue_depth",
            "Password checks waiting for a slot",
            queue_depth.clone(),
        );
        let cache_hit_ratio = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "credential_cache_hit_ratio",
            "Share of password checks answered by the verified-credential cache",
            cache_hit_ratio.clone(),
        );
        let lockouts = Counter::default();
        registry.register(
            "lockouts",
            "Accounts or addresses locked after repeated failures",
            lockouts.clone(),
        );
        let directory_operations =
            Family::<DirectoryOperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "ldap_operation_duration_seconds",
            "Directory (LDAP) operation latency, by directory and operation",
            directory_operations.clone(),
        );
        let directory_errors = Family::<DirectoryErrorLabels, Counter>::default();
        registry.register(
            "ldap_errors",
            "Directory (LDAP) failures that answered 503, by directory and kind",
            directory_errors.clone(),
        );
        let http = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by route and status",
            http.clone(),
        );
        Metrics {
            registry,
            issued,
            refused,
            password_checks,
            queue_depth,
            cache_hit_ratio,
            lockouts,
            directory_operations,
            directory_errors,
            http,
        }
    }

    /// A token was issued.
    pub fn issued(&self, realm: &str, method: &str, platform: &str) {
        let labels = IssuedLabels {
            realm: realm.to_owned(),
            method: method.to_owned(),
            platform: platform.to_owned(),
        };
        self.issued.get_or_create(&labels).inc();
    }

    /// A token request was refused for `reason` (one of a fixed set of texts).
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// A password check took `seconds`.
    pub fn password_checked(&self, seconds: f64) {
        self.password_checks.observe(seconds);
    }

    /// An account or address was locked.
    pub fn locked(&self) {
        self.lockouts.inc();
    }

    /// A directory operation (`connect`, `bind`, `search`) took `seconds`.
    pub fn directory_operation(&self, directory: &str, operation: &str, seconds: f64) {
        let labels = DirectoryOperationLabels {
            directory: directory.to_owned(),
            operation: operation.to_owned(),
        };
        self.directory_operations
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// A directory failed in the way `kind` names.
    pub fn directory_error(&self, directory: &str, kind: &str) {
        let labels = DirectoryErrorLabels {
            directory: directory.to_owned(),
            kind: kind.to_owned(),
        };
        self.directory_errors.get_or_create(&labels).inc();
    }

    /// A cache of HTTP latency series for one worker thread.
    pub fn http_series(&self) -> HttpSeries {
        HttpSeries {
            family: self.http.clone(),
            seen: RefCell::new(Vec::new()),
        }
    }

    /// The exposition text, with the scrape-time values read from `verifier`.
    pub fn render(&self, verifier: &Verifier) -> String {
        self.queue_depth
            .set(i64::try_from(verifier.queue_depth()).unwrap_or(i64::MAX));
        let (hits, misses) = verifier.cache_stats();
        let total = hits + misses;
        self.cache_hit_ratio.set(if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        });
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
