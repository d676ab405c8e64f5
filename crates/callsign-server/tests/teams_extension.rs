//! Teams extension assignments and exchange (2025-06-30), against a local test issuer.

use callsign_testkit::issuer;

use callsign_server::clock::{Clock, ManualClock};
use callsign_testkit::{raw, Reply, TestServer};
use issuer::{TestIssuer, APP_ID, TENANT, USER_OID};
use serde_json::{json, Value};
use std::sync::Arc;

const V: &str = "api-version=2025-06-30";
const OTHER: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";

fn assignment_path(tenant: &str, object: &str) -> String {
    format!("/access/teamsExtension/tenants/{tenant}/assignments/{object}?{V}")
}

async fn exchange(server: &TestServer, bearer: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/access/teamsExtension/:exchangeAccessToken?{V}",
            server.base
        ))
        .json(&json!({}));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    raw(request).await
}

fn extension_claims(issuer: &TestIssuer, now: i64) -> Value {
    let mut claims = issuer.teams_claims(now);
    claims["scp"] = "TeamsExtension.ManageCalls".into();
    claims
}

#[tokio::test]
async fn assignment_crud() {
    let clock = ManualClock::new(chrono::Utc::now());
    let server = TestServer::start_with(Arc::new(clock), |_| {}).await;
    let client = server.client();
    let path = assignment_path(TENANT, USER_OID);

    client.send("GET", &path, None).await.assert_error(
        404,
        "AssignmentNotFound",
        "Assignment not found.",
        None,
    );
    let created = client
        .send("PUT", &path, Some(br#"{"principalType":"user"}"#))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        created.json(),
        json!({"objectId": USER_OID, "tenantId": TENANT, "principalType": "user"})
    );
    let body = json!({"principalType": "resourceAccount", "clientIds": [APP_ID]}).to_string();
    let replaced = client.send("PUT", &path, Some(body.as_bytes())).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    let got = client.send("GET", &path, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.json(),
        json!({"objectId": USER_OID, "tenantId": TENANT, "principalType": "resourceAccount",
               "clientIds": [APP_ID]})
    );
    // Ids are case-insensitive.
    let upper = assignment_path(&TENANT.to_uppercase(), &USER_OID.to_uppercase());
    assert_eq!(client.send("GET", &upper, None).await.status, 200);

    client
        .send("PUT", &path, Some(br#"{}"#))
        .await
        .assert_error(
            400,
            "ValidationError",
            "PrincipalType: The PrincipalType field is required.",
            Some("PrincipalType"),
        );
    let bad = client
        .send("PUT", &path, Some(br#"{"principalType":"group"}"#))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["target"], "principalType");
    let bad = client
        .send(
            "PUT",
            &assignment_path("nope", USER_OID),
            Some(br#"{"principalType":"user"}"#),
        )
        .await;
    bad.assert_error(
        400,
        "ValidationError",
        "Provided tenantId has invalid format.",
        Some("tenantId"),
    );
    // Not in older versions.
    let old = format!(
        "/access/teamsExtension/tenants/{TENANT}/assignments/{USER_OID}?api-version=2023-10-01"
    );
    assert_eq!(client.send("GET", &old, None).await.status, 404);
    // Assignments are management calls: unsigned requests are denied.
    let unsigned = raw(reqwest::Client::new().get(format!("{}{path}", server.base))).await;
    unsigned.assert_error(401, "Denied", "Denied by the resource provider.", None);

    assert_eq!(client.send("DELETE", &path, None).await.status, 204);
    assert_eq!(client.send("DELETE", &path, None).await.status, 404);
    assert_eq!(client.send("GET", &path, None).await.status, 404);
}

#[tokio::test]
async fn the_exchange_needs_a_matching_assignment_and_client() {
    let issuer = TestIssuer::start().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let config = issuer.config();
    let server = TestServer::start_with(Arc::new(clock.clone()), move |c| {
        c.trusted_issuers = vec![config];
    })
    .await;
    let client = server.client();
    let now = clock.now().timestamp();
    let token = issuer.token(&extension_claims(&issuer, now));
    let forbidden = |reply: Reply| {
        reply.assert_error(
            403,
            "Forbidden",
            "No assignment allows this user and client application.",
            None,
        )
    };

    // No assignment yet.
    forbidden(exchange(&server, Some(&token)).await);

    let path = assignment_path(TENANT, USER_OID);
    let body = json!({"principalType": "user", "clientIds": [OTHER]}).to_string();
    assert_eq!(
        client
            .send("PUT", &path, Some(body.as_bytes()))
            .await
            .status,
        201
    );
    // Assigned, but for another client.
    forbidden(exchange(&server, Some(&token)).await);

    let body = json!({"principalType": "user", "clientIds": [OTHER, APP_ID]}).to_string();
    assert_eq!(
        client
            .send("PUT", &path, Some(body.as_bytes()))
            .await
            .status,
        200
    );
    let reply = exchange(&server, Some(&token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let json = reply.json();
    let id = format!("8:acs:{}_{TENANT}_{USER_OID}", server.resource_id);
    assert_eq!(json["identity"]["id"], id);
    let claims = callsign_testkit::payload(json["accessToken"]["token"].as_str().unwrap());
    assert_eq!(claims["skypeid"], id[2..]);
    assert_eq!(claims["exp"], now + 3600, "expires with the Entra token");
    let introspected = client
        .introspect(json["accessToken"]["token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], id);

    // Any client, with no client list.
    assert_eq!(
        client
            .send("PUT", &path, Some(br#"{"principalType":"user"}"#))
            .await
            .status,
        200
    );
    assert_eq!(exchange(&server, Some(&token)).await.status, 200);

    let invalid = |reply: Reply| {
        reply.assert_error(
            401,
            "InvalidAccessToken",
            "Provided access token is not valid.",
            None,
        )
    };
    // A Teams user token (no TeamsExtension scope) is not accepted here.
    invalid(exchange(&server, Some(&issuer.token(&issuer.teams_claims(now)))).await);
    invalid(exchange(&server, None).await);
    invalid(exchange(&server, Some("garbage")).await);
    let mut wrong_aud = extension_claims(&issuer, now);
    wrong_aud["aud"] = "https://communication.azure.com".into();
    invalid(exchange(&server, Some(&issuer.token(&wrong_aud))).await);
    let forged = issuer.forged(&extension_claims(&issuer, now));
    invalid(exchange(&server, Some(&forged)).await);
    let mut wrong_issuer = extension_claims(&issuer, now);
    wrong_issuer["iss"] = "https://evil.example/v2.0".into();
    invalid(exchange(&server, Some(&issuer.token(&wrong_issuer))).await);
    clock.advance(chrono::Duration::seconds(3600));
    invalid(exchange(&server, Some(&token)).await);

    // Deleting the assignment ends the access.
    clock.set(chrono::DateTime::from_timestamp(now, 0).unwrap());
    assert_eq!(client.send("DELETE", &path, None).await.status, 204);
    forbidden(exchange(&server, Some(&token)).await);
}
