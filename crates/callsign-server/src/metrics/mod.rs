//! Prometheus metrics: `GET /metrics` in the text exposition format (OpenMetrics text, which
//! Prometheus scrapes natively).
//!
//! Each server has its own registry (not a process-global recorder), so that several servers in
//! one process — the integration tests, a cluster test — count apart. Recording is a lock-free
//! look-up of an already created series plus an atomic add (histograms: a short mutex), well
//! under a microsecond (`benches/metrics_recording.rs`, BENCHMARKS.md).
//!
//! Served on the main listener behind the same authentication as management calls, and, with
//! `--metrics-addr`, on a listener of its own without authentication (for a scraper on a private
//! network). Labels hold operation names, statuses, algorithms and reasons — never ids, keys or
//! tokens.

pub mod process;
pub mod recent;
pub mod store;

use crate::auth::AuthError;
use crate::http::routes::{self, AcsOperation};
use crate::keys::SigningAlg;
use crate::store::{Backend, PoolStatus};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a counted number of identities is shown before the store is asked again: counting
/// the rows of a large table on every scrape would cost the database more than the gauge is worth.
pub const IDENTITY_COUNT_TTL: Duration = Duration::from_secs(5);

/// Request latency buckets, in seconds: 0.5 ms to 10 s (a token request takes a few ms).
const REQUEST_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Store latency buckets, in seconds: 50 µs (memory, a cached SQLite read) to 5 s (the
/// PostgreSQL operation timeout).
const STORE_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// Writes per SQLite group commit: powers of two up to the writer's batch limit (1024).
pub fn batch_size_histogram() -> Histogram {
    Histogram::new((0..=10).map(|i| f64::from(1u32 << i)))
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn store_histogram() -> Histogram {
    Histogram::new(STORE_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlgLabel {
    alg: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    url: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    backend: &'static str,
    operation: &'static str,
}

/// The names of the operations throttling counts.
fn throttled_operations() -> Vec<&'static str> {
    let id = String::new;
    let mut names: Vec<&'static str> = [
        AcsOperation::CreateIdentity,
        AcsOperation::DeleteIdentity(id()),
        AcsOperation::RevokeTokens(id()),
        AcsOperation::IssueToken(id()),
        AcsOperation::IssueTokenLegacy(id()),
        AcsOperation::TeamsUserExchange,
        AcsOperation::TeamsExtensionExchange,
        AcsOperation::EntraExchange,
        AcsOperation::GetIdentity(id()),
        AcsOperation::ListEntraAssignments,
    ]
    .iter()
    .filter(|op| op.throttling_group().is_some())
    .map(AcsOperation::name)
    .collect();
    names.dedup();
    names
}

/// The operation a response answered, put in its extensions by the dispatcher (which has resolved
/// the route already); responses without it (`/healthz`, refusals before routing) are named from
/// their method and path.
#[derive(Debug, Clone, Copy)]
pub struct Operation(pub &'static str);

/// A token minted for a response, with the algorithm that signed it: put in the response's
/// extensions by the handlers that mint, counted by [`record_requests`].
#[derive(Debug, Clone, Copy)]
pub struct TokenIssued(pub SigningAlg);

impl TokenIssued {
    /// `response`, marked as carrying a token signed with `alg`.
    pub fn mark(alg: SigningAlg, mut response: Response) -> Response {
        response.extensions_mut().insert(TokenIssued(alg));
        response
    }
}

/// One server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabel, Histogram, fn() -> Histogram>,
    tokens: Family<AlgLabel, Counter>,
    identities: Gauge,
    auth_failures: Family<ReasonLabel, Counter>,
    throttled: Family<OperationLabel, Counter>,
    store_durations: Family<StoreLabels, Histogram, fn() -> Histogram>,
    store_errors: Family<StoreLabels, Counter>,
    webhook_attempts: Family<WebhookLabels, Counter>,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiters: Gauge,
    pool_max_size: Gauge,
    backend: Arc<dyn Backend>,
    backend_name: &'static str,
    /// When the identities were last counted; a lock so that concurrent scrapes count once.
    counted_at: tokio::sync::Mutex<Option<Instant>>,
    /// The last minute's requests and tokens, per second (the console's Activity page).
    recent: recent::Recent,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("backend", &self.backend_name)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of a server storing in `backend` (counted from, and asked for its pool and
    /// group-commit figures; its operations are timed by the wrapper of [`Metrics::metered`]).
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "callsign_http_requests",
            "HTTP requests answered, by ACS operation name and status code",
            requests.clone(),
        );
        let durations = Family::new_with_constructor(request_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "callsign_http_request_duration",
            "Time from a request's arrival to its response, by ACS operation name",
            Unit::Seconds,
            durations.clone(),
        );
        let tokens = Family::<AlgLabel, Counter>::default();
        registry.register(
            "callsign_tokens_issued",
            "Access tokens minted (issued, created with an identity, exchanged), by signing algorithm",
            tokens.clone(),
        );
        let identities = Gauge::default();
        registry.register(
            "callsign_identities",
            "Live identities in the store (counted at most every 5 s, on scrape)",
            identities.clone(),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "callsign_auth_failures",
            "Requests refused authentication (401), by reason",
            auth_failures.clone(),
        );
        let throttled = Family::<OperationLabel, Counter>::default();
        registry.register(
            "callsign_throttled",
            "Requests refused by throttling (429), by ACS operation name",
            throttled.clone(),
        );
        let store_durations = Family::new_with_constructor(store_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "callsign_store_operation_duration",
            "Time of each store operation, by backend and operation",
            Unit::Seconds,
            store_durations.clone(),
        );
        let store_errors = Family::<StoreLabels, Counter>::default();
        registry.register(
            "callsign_store_errors",
            "Store operations that failed, by backend and operation",
            store_errors.clone(),
        );
        let webhook_attempts = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "callsign_webhook_attempts",
            "Webhook delivery attempts, by webhook URL and outcome (acknowledged or failed)",
            webhook_attempts.clone(),
        );
        let [pool_size, pool_available, pool_waiters, pool_max_size] =
            std::array::from_fn(|_| Gauge::default());
        // Series that exist before their first event, so that `rate()` sees it: every reason,
        // algorithm and throttled operation (statuses cannot be known beforehand).
        for reason in AuthError::REASONS {
            drop(auth_failures.get_or_create(&ReasonLabel { reason }));
        }
        for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
            drop(tokens.get_or_create(&AlgLabel {
                alg: alg.jws_name(),
            }));
        }
        for operation in throttled_operations() {
            drop(throttled.get_or_create(&OperationLabel { operation }));
        }
        if let Some(batches) = backend.group_commit_batches() {
            registry.register(
                "callsign_sqlite_commit_batch_size",
                "Writes committed per SQLite group-commit transaction",
                batches,
            );
        }
        if backend.pool_status().is_some() {
            registry.register(
                "callsign_postgres_pool_connections",
                "Connections open in the PostgreSQL pool",
                pool_size.clone(),
            );
            registry.register(
                "callsign_postgres_pool_idle_connections",
                "Connections of the PostgreSQL pool not in use",
                pool_available.clone(),
            );
            registry.register(
                "callsign_postgres_pool_waiters",
                "Operations waiting for a PostgreSQL connection",
                pool_waiters.clone(),
            );
            registry.register(
                "callsign_postgres_pool_max_connections",
                "The PostgreSQL pool's size limit",
                pool_max_size.clone(),
            );
        }
        if cfg!(target_os = "linux") {
            registry.register_collector(Box::new(process::ProcessCollector));
        }
        Self {
            registry,
            requests,
            durations,
            tokens,
            identities,
            auth_failures,
            throttled,
            store_durations,
            store_errors,
            webhook_attempts,
            pool_size,
            pool_available,
            pool_waiters,
            pool_max_size,
            backend_name: backend.backend_name(),
            backend,
            counted_at: tokio::sync::Mutex::new(None),
            recent: recent::Recent::default(),
        }
    }

    /// The metrics with the last minute's counts kept by `clock` (the server's) rather than the
    /// system clock.
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.recent = recent::Recent::new(clock);
        self
    }

    /// Requests and tokens per second over the last minute.
    pub fn recent(&self) -> recent::RecentCounts {
        self.recent.counts()
    }

    /// `backend` with each operation timed and its errors counted here; with `spans`, each
    /// operation made while serving a request is also a child span of the request's span
    /// (docs/tracing.md).
    pub fn metered(self: &Arc<Self>, backend: Arc<dyn Backend>, spans: bool) -> Arc<dyn Backend> {
        Arc::new(store::Metered::new(backend, self.clone()).with_spans(spans))
    }

    /// Counts one answered request of `operation` that took `elapsed`, and a 429 as throttled.
    pub fn record_request(&self, operation: &'static str, status: StatusCode, elapsed: Duration) {
        let status = status.as_u16();
        self.recent.request();
        self.requests
            .get_or_create(&RequestLabels { operation, status })
            .inc();
        self.durations
            .get_or_create(&OperationLabel { operation })
            .observe(elapsed.as_secs_f64());
        if status == StatusCode::TOO_MANY_REQUESTS.as_u16() {
            self.throttled
                .get_or_create(&OperationLabel { operation })
                .inc();
        }
    }

    /// Counts a minted token.
    pub fn token_issued(&self, alg: SigningAlg) {
        self.recent.token();
        self.tokens
            .get_or_create(&AlgLabel {
                alg: alg.jws_name(),
            })
            .inc();
    }

    /// Counts a request refused authentication for `reason` (a fixed, secret-free word).
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Makes a configured webhook's series exist before its first attempt (`rate()` sees it).
    pub fn webhook_configured(&self, url: &str) {
        for outcome in ["acknowledged", "failed"] {
            drop(self.webhook_attempts.get_or_create(&WebhookLabels {
                url: url.to_owned(),
                outcome,
            }));
        }
    }

    /// Counts one delivery attempt to the webhook at `url`.
    pub fn webhook_attempt(&self, url: &str, acknowledged: bool) {
        let outcome = if acknowledged {
            "acknowledged"
        } else {
            "failed"
        };
        self.webhook_attempts
            .get_or_create(&WebhookLabels {
                url: url.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts one store operation.
    pub fn store_operation(&self, operation: &'static str, elapsed: Duration, failed: bool) {
        let labels = StoreLabels {
            backend: self.backend_name,
            operation,
        };
        self.store_durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if failed {
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    /// The exposition: the gauges brought up to date (the identity count at most every
    /// [`IDENTITY_COUNT_TTL`]), then every metric.
    pub async fn render(&self) -> String {
        self.refresh_identities().await;
        if let Some(PoolStatus {
            size,
            available,
            waiting,
            max_size,
        }) = self.backend.pool_status()
        {
            self.pool_size.set(size as i64);
            self.pool_available.set(available as i64);
            self.pool_waiters.set(waiting as i64);
            self.pool_max_size.set(max_size as i64);
        }
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    async fn refresh_identities(&self) {
        let mut counted_at = self.counted_at.lock().await;
        if counted_at.is_some_and(|at| at.elapsed() < IDENTITY_COUNT_TTL) {
            return;
        }
        match self.backend.count_identities().await {
            Ok(n) => {
                self.identities.set(i64::try_from(n).unwrap_or(i64::MAX));
                *counted_at = Some(Instant::now());
            }
            // The last count stays; the next scrape tries again.
            Err(e) => tracing::warn!(error = %e, "counting identities for /metrics failed"),
        }
    }

    /// The `GET /metrics` answer.
    pub async fn response(&self) -> Response {
        let mut response = self.render().await.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

/// Middleware counting every request by operation and status, its latency, and the tokens its
/// response carries.
pub async fn record_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    // Cheap clones (a method without extension, a reference-counted path), for the fallback.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    let operation = match response.extensions().get::<Operation>() {
        Some(Operation(name)) => name,
        None => routes::operation_of(&method, uri.path()),
    };
    metrics.record_request(operation, response.status(), started.elapsed());
    if let Some(TokenIssued(alg)) = response.extensions().get::<TokenIssued>() {
        metrics.token_issued(*alg);
    }
    response
}

/// The router of the metrics listener (`--metrics-addr`): `GET /metrics`, no authentication;
/// everything else 404.
pub fn listener_router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(metrics): State<Arc<Metrics>>| async move {
                metrics.response().await
            }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(metrics)
}

/// Serves the metrics listener until the task is dropped (with the server).
pub async fn serve(listener: std::net::TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, listener_router(metrics)).await
}
