//! The change feed, `GET /callsign/events` (docs/protocol.md §7.10), against real servers on
//! loopback: events in commit order after a cursor, paging, long polls answered by a new event or
//! by shutdown, refusals (unauthenticated, a bad cursor, one older than the retention), and on a
//! PostgreSQL cluster every node's events seen once each, in order, by a reader on either node
//! while both write.

use callsign_server::clock::SystemClock;
use callsign_server::store::{self, OpenMode};
use callsign_testkit::{raw, Client, TestServer, TestStorage};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One page of the feed.
async fn read(client: &Client, query: &str) -> Value {
    let reply = client
        .send("GET", &format!("/callsign/events?{query}"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// The cursor after the newest event now.
async fn end_of_feed(client: &Client) -> String {
    read(client, "").await["cursor"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn types(page: &Value) -> Vec<&str> {
    page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_in_order_after_a_cursor_a_page_at_a_time() {
    let server = TestServer::start().await;
    let client = server.client();
    let empty = read(&client, "").await;
    assert_eq!(types(&empty), Vec::<&str>::new());
    let start = empty["cursor"].as_str().unwrap().to_owned();

    let user = client.create_user().await;
    assert_eq!(client.revoke(&user).await.status, 204);
    assert_eq!(client.delete(&user).await.status, 204);

    let all = read(&client, "").await;
    assert_eq!(
        types(&all),
        [
            "identity.created",
            "identity.tokensRevoked",
            "identity.deleted"
        ]
    );
    let events = all["value"].as_array().unwrap();
    for event in events {
        assert_eq!(event["subject"], user.as_str());
        assert_eq!(event["resource"], server.resource_id.as_str());
        assert!(event["id"].as_i64().unwrap() > 0);
        assert!(event["time"].is_string());
    }
    assert_eq!(
        all["cursor"], events[2]["cursor"],
        "continue after the last"
    );
    // The revocation's exact stamp: tokens issued at or before it are refused.
    let revoked = events[1]["details"]["revokedBeforeMicros"]
        .as_i64()
        .unwrap();
    let deleted = events[2]["details"]["deletedAtMicros"].as_i64().unwrap();
    assert!(revoked > 0 && deleted > revoked, "{revoked} {deleted}");
    assert_eq!(
        read(&client, &format!("after={start}")).await["value"],
        all["value"]
    );

    // A page at a time, each continuing from the cursor before.
    let mut cursor = start;
    let mut walked = Vec::new();
    loop {
        let page = read(&client, &format!("after={cursor}&maxpagesize=1")).await;
        let value = page["value"].as_array().unwrap().clone();
        if value.is_empty() {
            assert_eq!(
                page["cursor"].as_str().unwrap(),
                cursor,
                "an empty page stays put"
            );
            break;
        }
        assert_eq!(value.len(), 1);
        walked.push(value[0]["type"].as_str().unwrap().to_owned());
        cursor = page["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(walked, types(&all));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_is_answered_by_the_next_event_or_by_its_deadline() {
    let server = TestServer::start().await;
    let client = server.client();
    let cursor = end_of_feed(&client).await;

    // Nothing happens: an empty answer once the wait is over (one short real-time wait).
    let started = Instant::now();
    let page = read(&client, &format!("after={cursor}&wait=1")).await;
    assert_eq!(types(&page), Vec::<&str>::new());
    assert!(started.elapsed() >= Duration::from_secs(1));

    // An event while a reader waits: answered with it, long before the deadline.
    let waiting = {
        let (client, cursor) = (client.clone(), cursor.clone());
        tokio::spawn(async move { read(&client, &format!("after={cursor}&wait=60")).await })
    };
    let user = client.create_user().await;
    let started = Instant::now();
    let page = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("answered before the deadline")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(types(&page), ["identity.created"]);
    assert_eq!(page["value"][0]["subject"], user.as_str());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_answers_waiting_readers_at_once() {
    let server = TestServer::start().await;
    let client = server.client();
    let cursor = end_of_feed(&client).await;
    let waiting = {
        let client = client.clone();
        let cursor = cursor.clone();
        tokio::spawn(async move {
            client
                .send(
                    "GET",
                    &format!("/callsign/events?after={cursor}&wait=60"),
                    None,
                )
                .await
        })
    };
    // Give the request time to reach the server and start waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    server.stop().await;
    let reply = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("answered at shutdown, not after the wait")
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["value"], Value::Array(vec![]));
    assert_eq!(reply.json()["cursor"], cursor.as_str());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_acs_errors() {
    let server = TestServer::start().await;
    let client = server.client();
    let unsigned =
        raw(reqwest::Client::new().get(format!("{}/callsign/events", server.base))).await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    for (query, target) in [
        ("after=not-a-cursor", "after"),
        ("wait=61", "wait"),
        ("maxpagesize=0", "maxpagesize"),
    ] {
        let reply = client
            .send("GET", &format!("/callsign/events?{query}"), None)
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        assert_eq!(reply.json()["error"]["code"], "ValidationError");
        assert_eq!(reply.json()["error"]["target"], target);
    }

    // A cursor behind what the retention deleted: 410, and starting afresh works.
    let cursor = end_of_feed(&client).await;
    client.create_user().await;
    client.create_user().await;
    let store = store::open(
        &callsign_server::StorageConfig::DataDir(server.data.path().join("data")),
        OpenMode::Existing,
    )
    .await
    .unwrap();
    let future = chrono::Utc::now() + chrono::Duration::days(1);
    assert_eq!(
        store
            .delete_events_before(future.timestamp_micros())
            .await
            .unwrap(),
        2
    );
    let gone = client
        .send("GET", &format!("/callsign/events?after={cursor}"), None)
        .await;
    gone.assert_error(
        410,
        "CursorExpired",
        "The cursor is older than the retained events; read the current state again and \
         continue the feed from there.",
        None,
    );
    let fresh = read(&client, "").await;
    assert_eq!(types(&fresh), Vec::<&str>::new());
    client.create_user().await;
    let next = read(
        &client,
        &format!("after={}", fresh["cursor"].as_str().unwrap()),
    )
    .await;
    assert_eq!(types(&next), ["identity.created"]);
    server.stop().await;
}

/// Two nodes on one PostgreSQL database write at once while a reader on each follows the feed
/// in small pages: each reader sees every event once, none skipped (events that commit out of
/// id order included), and cursors only move forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_every_nodes_events_reach_every_reader_once() {
    let storage = TestStorage::postgres();
    let a = TestServer::start_on(&storage, Arc::new(SystemClock)).await;
    let b = TestServer::start_on(&storage, Arc::new(SystemClock)).await;
    let (on_a, on_b) = (a.client(), b.client());
    let start = read(&on_a, "").await["cursor"].as_str().unwrap().to_owned();

    const PER_NODE: usize = 150;
    let mut writers = tokio::task::JoinSet::new();
    for client in [on_a.clone(), on_b.clone()] {
        for _ in 0..3 {
            let client = client.clone();
            writers.spawn(async move {
                for _ in 0..PER_NODE / 3 {
                    let user = client.create_user().await;
                    assert_eq!(client.revoke(&user).await.status, 204);
                }
            });
        }
    }
    let expected = 2 * PER_NODE * 2;
    let follow = |client: Client, start: String| async move {
        let mut cursor = start;
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.len() < expected && Instant::now() < deadline {
            let page = read(&client, &format!("after={cursor}&maxpagesize=7&wait=5")).await;
            for event in page["value"].as_array().unwrap() {
                seen.push(event["id"].as_i64().unwrap());
            }
            cursor = page["cursor"].as_str().unwrap().to_owned();
        }
        seen
    };
    let readers = [
        tokio::spawn(follow(on_a.clone(), start.clone())),
        tokio::spawn(follow(on_b.clone(), start.clone())),
    ];
    while let Some(writer) = writers.join_next().await {
        writer.unwrap();
    }
    let TestStorage::Postgres(cluster) = &storage else {
        unreachable!()
    };
    let stored: HashSet<i64> = cluster
        .psql_query("SELECT id FROM audit_events")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(stored.len(), expected);
    for reader in readers {
        let seen = reader.await.unwrap();
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(seen.len(), unique.len(), "no event twice");
        assert_eq!(unique, stored, "every event, none skipped");
    }
    a.stop().await;
    b.stop().await;
}

/// The snapshot: every revoked or deleted identity's stamp, paged, with the feed cursor of its
/// start on every page; the feed from that cursor brings what changed after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_lists_the_stamps_and_where_to_follow_the_feed_from() {
    let server = TestServer::start().await;
    let client = server.client();
    let users = [
        client.create_user().await,
        client.create_user().await,
        client.create_user().await,
    ];
    assert_eq!(client.revoke(&users[0]).await.status, 204);
    assert_eq!(client.delete(&users[1]).await.status, 204);
    let feed = read(&client, "").await;
    let events = feed["value"].as_array().unwrap();
    let revoked = events[3]["details"]["revokedBeforeMicros"].clone();
    let deleted = events[4]["details"]["deletedAtMicros"].clone();

    let first = client
        .send("GET", "/callsign/revocations?maxpagesize=1", None)
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    let next = first["nextLink"].as_str().expect("a second page");
    let second = client.send("GET", next, None).await.json();
    assert!(second.get("nextLink").is_none());
    assert_eq!(first["cursor"], second["cursor"], "one cursor for the walk");
    assert_eq!(first["cursor"], feed["cursor"], "where the feed stood");
    let mut stamped: Vec<Value> = [&first, &second]
        .iter()
        .flat_map(|page| page["value"].as_array().unwrap().clone())
        .collect();
    stamped.sort_by_key(|s| s["id"].as_str().unwrap().to_owned());
    let mut expected = vec![
        serde_json::json!({"id": users[0], "revokedBeforeMicros": revoked}),
        serde_json::json!({"id": users[1], "deletedAtMicros": deleted}),
    ];
    expected.sort_by_key(|s| s["id"].as_str().unwrap().to_owned());
    assert_eq!(stamped, expected);

    // What changes after the snapshot comes in the feed from its cursor.
    assert_eq!(client.revoke(&users[2]).await.status, 204);
    let after = read(
        &client,
        &format!("after={}", first["cursor"].as_str().unwrap()),
    )
    .await;
    assert_eq!(types(&after), ["identity.tokensRevoked"]);
    assert_eq!(after["value"][0]["subject"], users[2].as_str());
    let bad = client
        .send("GET", "/callsign/revocations?cursor=nope", None)
        .await;
    assert_eq!(bad.status, 400);
    server.stop().await;
}
