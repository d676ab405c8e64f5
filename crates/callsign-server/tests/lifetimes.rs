//! Token lifetimes: ACS's 60 to 1440 minutes, and a shorter configured minimum for testing
//! refresh logic (`--min-token-lifetime`), named in the refusal.

use callsign_server::clock::SystemClock;
use callsign_server::domain::Minutes;
use callsign_testkit::{encode, payload, TestServer};
use serde_json::json;
use std::sync::Arc;

async fn issue(server: &TestServer, id: &str, minutes: i64) -> callsign_testkit::Reply {
    server
        .client()
        .post(
            &format!(
                "/identities/{}/:issueAccessToken?api-version=2023-10-01",
                encode(id)
            ),
            &json!({"scopes": ["chat"], "expiresInMinutes": minutes}),
        )
        .await
}

#[tokio::test]
async fn a_configured_minimum_allows_short_tokens_and_names_itself() {
    let min = Minutes::at_least(2, Minutes::SHORTEST).unwrap();
    let server = TestServer::start_with(Arc::new(SystemClock), move |config| {
        config.min_token_lifetime = min
    })
    .await;
    let id = server.client().create_user().await;
    let reply = issue(&server, &id, 2).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let claims = payload(reply.json()["token"].as_str().unwrap());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 120);
    issue(&server, &id, 1).await.assert_error(
        400,
        "ValidationError",
        "ExpiresInMinutes value 1 is invalid. Value must be within the [2, 1440] interval.",
        Some("ExpiresInMinutes"),
    );
    // Creating with a token obeys the same minimum.
    let created = server
        .client()
        .post(
            "/identities?api-version=2023-10-01",
            &json!({"createTokenWithScopes": ["voip"], "expiresInMinutes": 2}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
}

#[tokio::test]
async fn by_default_the_minimum_is_acs_s_hour() {
    let server = TestServer::start().await;
    let id = server.client().create_user().await;
    issue(&server, &id, 59).await.assert_error(
        400,
        "ValidationError",
        "ExpiresInMinutes value 59 is invalid. Value must be within the [60, 1440] interval.",
        Some("ExpiresInMinutes"),
    );
    assert_eq!(issue(&server, &id, 60).await.status, 200);
}
