//! Throttling as ACS documents it (docs/protocol.md §2.6), against a real server on a manual
//! clock: a fixed window per operation group, exactly its limit admitted, then 429
//! `TooManyRequests` with `Retry-After` until the window ends; groups counted apart; off by
//! default; on PostgreSQL, one limit for every node of the cluster.

use callsign_server::clock::ManualClock;
use callsign_server::throttling::ThrottleConfig;
use callsign_testkit::{encode, Client, Reply, TestServer, TestStorage};
use chrono::{DateTime, Duration};
use serde_json::json;
use std::sync::Arc;

/// A moment on a 30-second boundary (1,800,000,000 is a multiple of 30).
fn window_start() -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

async fn server_with(limits: ThrottleConfig, clock: &ManualClock) -> TestServer {
    TestServer::start_with(Arc::new(clock.clone()), |config| config.throttling = limits).await
}

async fn issue(client: &Client, id: &str) -> Reply {
    client
        .post(
            &format!(
                "/identities/{}/:issueAccessToken?api-version=2023-10-01",
                encode(id)
            ),
            &json!({ "scopes": ["chat"] }),
        )
        .await
}

/// Sends `n` token issues at once (32 in flight) and returns their statuses.
async fn issue_many(client: &Client, id: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        if i >= 32 {
            statuses.push(tasks.join_next().await.unwrap().unwrap());
        }
        let (client, id) = (client.clone(), id.to_owned());
        tasks.spawn(async move { issue(&client, &id).await.status });
    }
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

fn assert_throttled(reply: &Reply, retry_after: u32) {
    reply.assert_error(429, "TooManyRequests", "Too many requests.", None);
    assert_eq!(
        reply.header("retry-after"),
        Some(retry_after.to_string().as_str())
    );
    assert!(reply.header("api-supported-versions").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acs_preset_admits_exactly_1000_issues_a_window_then_429_until_it_ends() {
    let clock = ManualClock::new(window_start() - Duration::seconds(10));
    let server = server_with(ThrottleConfig::acs(), &clock).await;
    let client = server.client();
    // Created in the window before, so the next one holds issues alone.
    let user = client.create_user().await;

    clock.set(window_start() + Duration::seconds(5));
    let statuses = issue_many(&client, &user, 1000).await;
    assert_eq!(count(&statuses, 200), 1000, "{statuses:?}");
    assert_throttled(&issue(&client, &user).await, 25);
    // Creating identities is in the same group.
    let create = client
        .post("/identities?api-version=2023-10-01", &json!({}))
        .await;
    assert_throttled(&create, 25);
    // Reading is not throttled, nor is the other group.
    let get = client
        .send(
            "GET",
            &format!(
                "/identities/{}?api-version=2025-03-02-preview",
                encode(&user)
            ),
            None,
        )
        .await;
    assert_eq!(get.status, 200, "{}", get.text());
    assert_eq!(client.revoke(&user).await.status, 204);

    clock.advance(Duration::milliseconds(24_500));
    assert_throttled(&issue(&client, &user).await, 1);
    clock.advance(Duration::milliseconds(500));
    assert_eq!(issue(&client, &user).await.status, 200, "the next window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_revoke_share_500_a_window_apart_from_issuing() {
    let clock = ManualClock::new(window_start() - Duration::seconds(1));
    let server = server_with(ThrottleConfig::acs(), &clock).await;
    let client = server.client();
    let users = [client.create_user().await, client.create_user().await];

    clock.set(window_start());
    for _ in 0..499 {
        assert_eq!(client.revoke(&users[0]).await.status, 204);
    }
    assert_eq!(client.delete(&users[1]).await.status, 204, "the 500th");
    assert_throttled(&client.revoke(&users[0]).await, 30);
    assert_throttled(&client.delete(&users[0]).await, 30);
    // Issuing counts apart, and a throttled delete deleted nothing.
    assert_eq!(issue(&client, &users[0]).await.status, 200);

    clock.advance(Duration::seconds(30));
    assert_eq!(client.delete(&users[0]).await.status, 204);
}

/// A reset (test suites sharing a server) starts the counts afresh with the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_starts_the_windows_afresh() {
    let clock = ManualClock::new(window_start());
    let server = TestServer::start_with(Arc::new(clock.clone()), |config| {
        config.throttling = ThrottleConfig::acs();
        config.http.allow_reset = true;
    })
    .await;
    let client = server.client();
    let user = client.create_user().await;
    for _ in 0..500 {
        assert_eq!(client.revoke(&user).await.status, 204);
    }
    assert_throttled(&client.revoke(&user).await, 30);
    let reset = client.send("POST", "/callsign/:reset", None).await;
    assert_eq!(reset.status, 204, "{}", reset.text());
    let user = client.create_user().await;
    assert_eq!(client.revoke(&user).await.status, 204, "a fresh window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_is_the_default_and_lets_everything_through() {
    let clock = ManualClock::new(window_start());
    let server = TestServer::start_manual(clock.clone()).await;
    let client = server.client();
    let user = client.create_user().await;
    let statuses = issue_many(&client, &user, 1001).await;
    assert_eq!(count(&statuses, 200), 1001);
    for _ in 0..501 {
        assert_eq!(client.revoke(&user).await.status, 204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_authentication_does_not_use_up_the_window() {
    let clock = ManualClock::new(window_start());
    let limits = ThrottleConfig {
        issue: Some(2),
        ..ThrottleConfig::off()
    };
    let server = server_with(limits, &clock).await;
    let stranger = server.client_with(callsign_common::AccessKey::from_bytes(vec![7; 32]));
    for _ in 0..5 {
        let reply = stranger
            .post("/identities?api-version=2023-10-01", &json!({}))
            .await;
        assert_eq!(reply.status, 401);
    }
    let client = server.client();
    let user = client.create_user().await;
    assert_eq!(issue(&client, &user).await.status, 200);
    assert_throttled(&issue(&client, &user).await, 30);
}

/// Two servers on one PostgreSQL database (a cluster) count into the same windows: a burst spread
/// over both gets exactly the limit through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_one_database_share_the_limit() {
    let storage = TestStorage::postgres();
    let clock = ManualClock::new(window_start() - Duration::seconds(1));
    let limits = ThrottleConfig {
        issue: Some(50),
        ..ThrottleConfig::acs()
    };
    let configure = |config: &mut callsign_server::ServerConfig| {
        config.storage = storage.config();
        config.throttling = limits;
    };
    let a = TestServer::start_with(Arc::new(clock.clone()), configure).await;
    let b = TestServer::start_with(Arc::new(clock.clone()), configure).await;
    let user = a.client().create_user().await;

    clock.set(window_start() + Duration::seconds(10));
    let (client_a, client_b) = (a.client(), b.client());
    let (from_a, from_b) = tokio::join!(
        issue_many(&client_a, &user, 40),
        issue_many(&client_b, &user, 40)
    );
    let admitted = count(&from_a, 200) + count(&from_b, 200);
    assert_eq!(admitted, 50, "a: {from_a:?}, b: {from_b:?}");
    assert_eq!(count(&from_a, 429) + count(&from_b, 429), 30);
    assert_throttled(&issue(&b.client(), &user).await, 20);

    clock.advance(Duration::seconds(20));
    assert_eq!(issue(&b.client(), &user).await.status, 200);
    assert_eq!(issue(&a.client(), &user).await.status, 200);
}

/// What counting costs a token issue, on a data dir and on PostgreSQL: the counter alone
/// (sequential `count_request`s), and the median latency of sequential issue-token requests sent
/// in turn to a server with throttling off and one with it on (a limit never reached), so that
/// both see the same load. A measurement, not a check:
/// `cargo test -p callsign-server --test throttling -- --ignored --nocapture counter_cost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn counter_cost_on_the_token_path() {
    use std::time::Instant;
    let on = ThrottleConfig {
        issue: Some(u32::MAX),
        ..ThrottleConfig::acs()
    };
    for name in ["sqlite", "postgres"] {
        // Two data dirs (one process each), or the two nodes of one database.
        let storages = match name {
            "sqlite" => vec![TestStorage::sqlite(), TestStorage::sqlite()],
            _ => vec![TestStorage::postgres()],
        };
        let store = storages[0].open().await;
        let n = 5000;
        let started = Instant::now();
        for _ in 0..n {
            store.count_request("measure", 0).await.unwrap();
        }
        let counter_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        drop(store);

        let clock = ManualClock::new(window_start());
        let mut servers = Vec::new();
        for (i, limits) in [ThrottleConfig::off(), on].into_iter().enumerate() {
            let storage = storages[i % storages.len()].config();
            servers.push(
                TestServer::start_with(Arc::new(clock.clone()), |config| {
                    config.storage = storage;
                    config.throttling = limits;
                })
                .await,
            );
        }
        let clients: Vec<Client> = servers.iter().map(TestServer::client).collect();
        let mut users = Vec::new();
        for client in &clients {
            users.push(client.create_user().await);
        }
        let mut latencies = [Vec::new(), Vec::new()];
        for round in 0..3000 {
            let which = round % 2;
            let started = Instant::now();
            let reply = issue(&clients[which], &users[which]).await;
            let elapsed = started.elapsed().as_secs_f64() * 1e6;
            assert_eq!(reply.status, 200);
            if round >= 200 {
                latencies[which].push(elapsed);
            }
        }
        let [off, on] = latencies.map(|mut l| {
            l.sort_by(f64::total_cmp);
            (l[l.len() / 2], l[l.len() * 9 / 10])
        });
        println!(
            "{name}: counter {counter_us:.2} µs/call; issue-token request (1,400 each, in turn), \
             median off {:.0} µs, on {:.0} µs ({:+.0} µs); p90 off {:.0} µs, on {:.0} µs",
            off.0,
            on.0,
            on.0 - off.0,
            off.1,
            on.1
        );
    }
}
