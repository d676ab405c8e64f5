//! `GET /metrics` (Prometheus): on the listener of `metrics_addr` without authentication, on the
//! main listener only with it (401 with the ACS body otherwise); after a create, an issue, a
//! badly signed request and a throttled one, the exposition — parsed, not grepped — counts each
//! by operation, status, algorithm and reason, times them in the histogram, shows the identity
//! gauge, the store's figures and, on Linux, the process's.

use callsign_common::AccessKey;
use callsign_server::clock::ManualClock;
use callsign_server::throttling::ThrottleConfig;
use callsign_testkit::{encode, TestServer, TestStorage};
use chrono::{DateTime, Duration};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: `# TYPE` lines and samples.
#[derive(Debug)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics text ends with # EOF"
        );
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').unwrap();
                    let labels = body
                        .split(',')
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').unwrap();
                            let v = v.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
                            (k.to_owned(), v.to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Self { types, samples }
    }

    /// The value of the series `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut found = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want);
        let sample = found.next()?;
        assert!(found.next().is_none(), "{name} {labels:?} appears twice");
        Some(sample.value)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {:#?}", self.samples))
    }

    fn kind(&self, name: &str) -> &str {
        self.types
            .get(name)
            .unwrap_or_else(|| panic!("no # TYPE {name}"))
    }

    /// Every series of `name`.
    fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// A moment on a 30-second boundary.
fn window_start() -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

async fn scrape(addr: std::net::SocketAddr) -> (reqwest::StatusCode, String, String) {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_tokens_refusals_and_throttling() {
    let clock = ManualClock::new(window_start() + Duration::seconds(5));
    let server = TestServer::start_with(Arc::new(clock.clone()), |config| {
        config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        // Two issue-group requests a window: the create and one issue; the next is throttled.
        config.throttling = ThrottleConfig {
            issue: Some(2),
            ..ThrottleConfig::off()
        };
    })
    .await;
    let metrics_addr = server.metrics_addr.expect("a metrics listener");
    let client = server.client();

    let user = client.create_user().await;
    client.issue_token(&user, &["chat"]).await;
    let path = format!(
        "/identities/{}/:issueAccessToken?api-version=2023-10-01",
        encode(&user)
    );
    let stranger = server.client_with(AccessKey::from_bytes(vec![7; 32]));
    let refused = stranger.post(&path, &json!({ "scopes": ["chat"] })).await;
    assert_eq!(refused.status, 401);
    let throttled = client.post(&path, &json!({ "scopes": ["chat"] })).await;
    assert_eq!(throttled.status, 429);

    // The main listener: no authentication, the ACS 401 body; HMAC, the exposition.
    let unsigned = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let body: serde_json::Value = unsigned.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Denied", "{body}");
    let signed = client.send("GET", "/metrics", None).await;
    assert_eq!(signed.status, 200);
    assert!(signed
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let main = Exposition::parse(&signed.text());
    assert_eq!(
        main.get(
            "callsign_http_requests_total",
            &[("operation", "Metrics"), ("status", "401")]
        ),
        1.0
    );

    // The metrics listener: no authentication needed.
    let (status, content_type, text) = scrape(metrics_addr).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text"));
    let m = Exposition::parse(&text);

    assert_eq!(m.kind("callsign_http_requests"), "counter");
    let requests = |operation: &str, status: &str| {
        m.get(
            "callsign_http_requests_total",
            &[("operation", operation), ("status", status)],
        )
    };
    assert_eq!(requests("CreateIdentity", "201"), 1.0);
    assert_eq!(requests("IssueAccessToken", "200"), 1.0);
    assert_eq!(requests("IssueAccessToken", "401"), 1.0);
    assert_eq!(requests("IssueAccessToken", "429"), 1.0);
    assert_eq!(requests("Metrics", "401"), 1.0);
    assert_eq!(requests("Metrics", "200"), 1.0);
    assert_eq!(m.series("callsign_http_requests_total").count(), 6);

    // The histogram: cumulative buckets, +Inf equal to the count, a positive sum.
    let histogram = "callsign_http_request_duration_seconds";
    assert_eq!(m.kind(histogram), "histogram");
    let issue = [("operation", "IssueAccessToken")];
    assert_eq!(m.get(&format!("{histogram}_count"), &issue), 3.0);
    assert!(m.get(&format!("{histogram}_sum"), &issue) > 0.0);
    let buckets: Vec<(f64, f64)> = m
        .series(&format!("{histogram}_bucket"))
        .filter(|s| s.labels.get("operation").map(String::as_str) == Some("IssueAccessToken"))
        .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value))
        .collect();
    assert!(buckets.len() > 5);
    assert!(buckets
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 3.0));

    assert_eq!(m.kind("callsign_tokens_issued"), "counter");
    assert_eq!(
        m.get("callsign_tokens_issued_total", &[("alg", "RS256")]),
        1.0
    );
    // Every algorithm, reason and throttled operation is there from the start, at zero.
    assert_eq!(
        m.get("callsign_tokens_issued_total", &[("alg", "ES256")]),
        0.0
    );
    assert_eq!(m.series("callsign_tokens_issued_total").count(), 3);
    assert_eq!(
        m.get(
            "callsign_auth_failures_total",
            &[("reason", "bearer_expired")]
        ),
        0.0
    );
    assert_eq!(m.series("callsign_auth_failures_total").count(), 14);
    assert_eq!(
        m.get("callsign_auth_failures_total", &[("reason", "signature")]),
        1.0
    );
    assert_eq!(
        m.get("callsign_auth_failures_total", &[("reason", "missing")]),
        1.0
    );
    assert_eq!(
        m.get(
            "callsign_throttled_total",
            &[("operation", "IssueAccessToken")]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            "callsign_throttled_total",
            &[("operation", "CreateIdentity")]
        ),
        0.0
    );
    assert_eq!(m.series("callsign_throttled_total").count(), 7);
    assert_eq!(m.kind("callsign_identities"), "gauge");
    assert_eq!(m.get("callsign_identities", &[]), 1.0);

    // The store (SQLite: the test server's data dir).
    let store = "callsign_store_operation_duration_seconds";
    assert_eq!(m.kind(store), "histogram");
    let create = [("backend", "sqlite"), ("operation", "create_identity")];
    assert_eq!(m.get(&format!("{store}_count"), &create), 1.0);
    let counts = [("backend", "sqlite"), ("operation", "count_request")];
    // Throttling counted the create, the issue and the throttled issue (not the refused one).
    assert_eq!(m.get(&format!("{store}_count"), &counts), 3.0);
    assert!(m
        .series("callsign_store_errors_total")
        .all(|s| s.value == 0.0));
    assert_eq!(m.kind("callsign_sqlite_commit_batch_size"), "histogram");
    assert!(m.get("callsign_sqlite_commit_batch_size_count", &[]) >= 1.0);

    if cfg!(target_os = "linux") {
        assert_eq!(m.kind("process_cpu_seconds"), "counter");
        assert!(m.get("process_cpu_seconds_total", &[]) > 0.0);
        assert!(m.get("process_resident_memory_bytes", &[]) > 1e6);
        assert!(m.get("process_open_fds", &[]) >= 3.0);
        let started = m.get("process_start_time_seconds", &[]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(started > now - 24.0 * 3600.0 && started <= now + 1.0);
    }

    // Nothing secret in any label: neither the identity nor a key.
    assert!(!text.contains(&user) && !text.contains(&server.key.to_base64()));

    // The metrics listener serves /metrics only, and stops with the server.
    let other = reqwest::get(format!("http://{metrics_addr}/identities"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    server.stop().await;
    assert!(reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_addr_only_the_authenticated_main_listener_serves_metrics() {
    let server = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), |config| {
        config.storage = callsign_server::StorageConfig::Memory(Default::default())
    })
    .await;
    assert!(server.metrics_addr.is_none());
    let client = server.client();
    client.create_user().await;
    client.create_user().await;
    let reply = client.send("GET", "/metrics", None).await;
    assert_eq!(reply.status, 200);
    let m = Exposition::parse(&reply.text());
    assert_eq!(m.get("callsign_identities", &[]), 2.0);
    let create = [("backend", "memory"), ("operation", "create_identity")];
    assert_eq!(
        m.get("callsign_store_operation_duration_seconds_count", &create),
        2.0
    );
    // No pool and no group commit in memory.
    assert!(
        m.types
            .keys()
            .all(|name| !name.starts_with("callsign_postgres")
                && !name.starts_with("callsign_sqlite"))
    );
    // A wrong method is the ACS 405.
    assert_eq!(
        client.send("POST", "/metrics", Some(b"{}")).await.status,
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_the_pool_and_store_errors_are_shown() {
    let storage = TestStorage::postgres();
    let storage_config = storage.config();
    let server = TestServer::start_with(
        Arc::new(callsign_server::clock::SystemClock),
        move |config| {
            config.storage = storage_config;
            config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        },
    )
    .await;
    let metrics_addr = server.metrics_addr.unwrap();
    let client = server.client();
    let user = client.create_user().await;

    let (_, _, text) = scrape(metrics_addr).await;
    let m = Exposition::parse(&text);
    assert_eq!(m.get("callsign_identities", &[]), 1.0);
    assert_eq!(m.kind("callsign_postgres_pool_connections"), "gauge");
    assert!(m.get("callsign_postgres_pool_connections", &[]) >= 1.0);
    assert!(
        m.get("callsign_postgres_pool_idle_connections", &[])
            <= m.get("callsign_postgres_pool_connections", &[])
    );
    assert_eq!(m.get("callsign_postgres_pool_max_connections", &[]), 16.0);
    assert_eq!(m.get("callsign_postgres_pool_waiters", &[]), 0.0);
    let create = [("backend", "postgres"), ("operation", "create_identity")];
    assert_eq!(
        m.get("callsign_store_operation_duration_seconds_count", &create),
        1.0
    );
    assert!(m
        .series("callsign_store_errors_total")
        .all(|s| s.value == 0.0));
    assert!(!m.types.contains_key("callsign_sqlite_commit_batch_size"));

    // The database goes away: the issue fails (503) and the failed read is counted.
    let TestStorage::Postgres(cluster) = &storage else {
        unreachable!()
    };
    cluster.crash();
    let path = format!(
        "/identities/{}/:issueAccessToken?api-version=2023-10-01",
        encode(&user)
    );
    let reply = client.post(&path, &json!({ "scopes": ["chat"] })).await;
    assert_eq!(reply.status, 503);
    let (_, _, text) = scrape(metrics_addr).await;
    let m = Exposition::parse(&text);
    let stamp = [("backend", "postgres"), ("operation", "stamp_token")];
    assert!(m.get("callsign_store_errors_total", &stamp) >= 1.0);
    assert_eq!(
        m.get(
            "callsign_http_requests_total",
            &[("operation", "IssueAccessToken"), ("status", "503")]
        ),
        1.0
    );
}
