//! callsign's own management routes: `GET /callsign/identities` (listing, paged) and
//! `POST /callsign/:reset` (only where the server allows it).

use callsign_server::clock::SystemClock;
use callsign_testkit::{Client, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;

async fn allowing_reset() -> TestServer {
    TestServer::start_with(Arc::new(SystemClock), |config| {
        config.http.allow_reset = true
    })
    .await
}

async fn create(client: &Client, custom_id: Option<&str>) -> String {
    let body = match custom_id {
        Some(c) => json!({ "customId": c }),
        None => json!({}),
    };
    let reply = client
        .post("/identities?api-version=2025-03-02-preview", &body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["identity"]["id"].as_str().unwrap().to_owned()
}

/// Follows `nextLink` from `first` and returns every listed id, checking each page's size.
async fn walk(client: &Client, first: &str, page_size: usize) -> Vec<Value> {
    let mut listed = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let page = client.send("GET", &path, None).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        let value = page["value"].as_array().unwrap();
        assert!(value.len() <= page_size);
        listed.extend(value.iter().cloned());
        next = page["nextLink"].as_str().map(str::to_owned);
        if next.is_some() {
            assert_eq!(value.len(), page_size, "only a full page links on");
        }
    }
    listed
}

#[tokio::test]
async fn identities_are_listed_in_pages_with_their_state() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(create(&client, (i == 3).then_some("carla")).await);
    }
    let deleted = ids.remove(5);
    assert_eq!(client.delete(&deleted).await.status, 204);
    let revoked = ids[1].clone();
    client.issue_token(&revoked, &["chat"]).await;
    assert_eq!(client.revoke(&revoked).await.status, 204);
    ids.sort();

    let listed = walk(&client, "/callsign/identities?maxpagesize=2", 2).await;
    let listed_ids: Vec<&str> = listed.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed_ids, ids, "live identities, by id, each once");
    for identity in &listed {
        assert!(identity["createdAt"].is_string(), "{identity}");
        let id = identity["id"].as_str().unwrap();
        assert_eq!(
            identity["revokedAt"].is_string(),
            id == revoked,
            "{identity}"
        );
        assert_eq!(
            identity["lastTokenIssuedAt"].is_string(),
            id == revoked,
            "{identity}"
        );
    }

    // One custom id, and an api-version is ignored like on every /callsign route.
    let carla = client
        .send(
            "GET",
            "/callsign/identities?customId=carla&api-version=2023-10-01",
            None,
        )
        .await
        .json();
    assert_eq!(carla["value"].as_array().unwrap().len(), 1);
    assert_eq!(carla["value"][0]["customId"], "carla");
    assert!(carla.get("nextLink").is_none());
}

#[tokio::test]
async fn bad_list_parameters_and_missing_auth_are_refused() {
    let server = TestServer::start().await;
    let client = server.client();
    for (query, target, message) in [
        (
            "maxpagesize=0",
            "maxpagesize",
            "maxpagesize must be within the [1, 1000] interval.",
        ),
        (
            "maxpagesize=1001",
            "maxpagesize",
            "maxpagesize must be within the [1, 1000] interval.",
        ),
        (
            "continuationToken=%%%",
            "continuationToken",
            "Provided continuationToken is not valid.",
        ),
    ] {
        client
            .send("GET", &format!("/callsign/identities?{query}"), None)
            .await
            .assert_error(400, "ValidationError", message, Some(target));
    }
    let unsigned = callsign_testkit::raw(
        reqwest::Client::new().get(format!("{}/callsign/identities", server.base)),
    )
    .await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(
        client
            .send("DELETE", "/callsign/identities", None)
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn reset_exists_only_where_allowed() {
    let server = TestServer::start().await;
    let client = server.client();
    let id = create(&client, None).await;
    let refused = client.send("POST", "/callsign/:reset", None).await;
    assert_eq!(refused.status, 404);
    assert_eq!(refused.json()["error"]["code"], "NotFound");
    let still = walk(&client, "/callsign/identities", 100).await;
    assert_eq!(still.len(), 1, "{id} is still there");
}

#[tokio::test]
async fn reset_removes_users_and_assignments_and_keeps_keys_and_tokens_invalid() {
    let server = allowing_reset().await;
    let client = server.client();
    let id = create(&client, Some("dora")).await;
    let token = client.issue_token(&id, &["chat"]).await;
    let assignment = "/access/teamsExtension/tenants/72f988bf-86f1-41af-91ab-2d7cd011db47/\
                      assignments/207ffef6-9444-41fb-92ab-20eacaae2768?api-version=2025-06-30";
    let put = client
        .send("PUT", assignment, Some(br#"{"principalType":"user"}"#))
        .await;
    assert_eq!(put.status, 201, "{}", put.text());

    let unsigned = callsign_testkit::raw(
        reqwest::Client::new().post(format!("{}/callsign/:reset", server.base)),
    )
    .await;
    assert_eq!(unsigned.status, 401, "a reset needs the access key");
    assert_eq!(
        client.send("POST", "/callsign/:reset", None).await.status,
        204
    );

    assert!(walk(&client, "/callsign/identities", 100).await.is_empty());
    assert_eq!(client.send("GET", assignment, None).await.status, 404);
    assert_eq!(client.introspect(&token).await["active"], false);
    // The keys stayed: the same client works, and the custom id is free again.
    let again = create(&client, Some("dora")).await;
    assert_ne!(again, id);
}
