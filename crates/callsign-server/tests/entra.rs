//! Entra assignments and the Entra ID exchange (2025-03-02-preview), against a local test issuer.

use callsign_testkit::issuer;

use callsign_server::clock::{Clock, ManualClock};
use callsign_testkit::{raw, Reply, TestServer};
use issuer::{TestIssuer, APP_ID, TENANT, USER_OID};
use serde_json::{json, Value};
use std::sync::Arc;

const V: &str = "api-version=2025-03-02-preview";
const OTHER: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";
const GROUP: &str = "0d2f2a5e-6b0b-4c7e-9f5a-3a1b2c3d4e5f";

fn assignment_path(object: &str) -> String {
    format!("/access/entra/assignments/{object}?{V}")
}

fn assignment(principal_type: &str, clients: &[&str]) -> Value {
    json!({"tenantId": TENANT, "principalType": principal_type, "clientIds": clients})
}

async fn exchange(server: &TestServer, bearer: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/access/entra/:exchangeAccessToken?{V}",
            server.base
        ))
        .json(&json!({}));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    raw(request).await
}

fn object_id(n: usize) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

#[tokio::test]
async fn assignment_crud() {
    let server =
        TestServer::start_with(Arc::new(ManualClock::new(chrono::Utc::now())), |_| {}).await;
    let client = server.client();
    let path = assignment_path(USER_OID);

    client.send("GET", &path, None).await.assert_error(
        404,
        "AssignmentNotFound",
        "Assignment not found.",
        None,
    );
    let body = assignment("user", &[APP_ID]).to_string();
    let created = client.send("PUT", &path, Some(body.as_bytes())).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        created.json(),
        json!({"objectId": USER_OID, "tenantId": TENANT, "principalType": "user",
               "clientIds": [APP_ID]})
    );
    let body = assignment("group", &[APP_ID, OTHER]).to_string();
    let replaced = client.send("PUT", &path, Some(body.as_bytes())).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    // Ids are case-insensitive.
    let got = client
        .send("GET", &assignment_path(&USER_OID.to_uppercase()), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["principalType"], "group");
    assert_eq!(got.json()["clientIds"], json!([APP_ID, OTHER]));

    let missing = client
        .send("PUT", &path, Some(br#"{"principalType":"user"}"#))
        .await;
    missing.assert_error(
        400,
        "ValidationError",
        "TenantId: The TenantId field is required.",
        Some("TenantId"),
    );
    let bad = assignment("resourceAccount", &[APP_ID]).to_string();
    let bad = client.send("PUT", &path, Some(bad.as_bytes())).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["target"], "principalType");
    // A tenant assignment is keyed by the tenant id itself.
    let tenant = assignment("tenant", &[APP_ID]).to_string();
    let bad = client.send("PUT", &path, Some(tenant.as_bytes())).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["target"], "objectId");
    let body = assignment("user", &[APP_ID]).to_string();
    client
        .send("PUT", &assignment_path("nope"), Some(body.as_bytes()))
        .await
        .assert_error(
            400,
            "ValidationError",
            "Provided objectId has invalid format.",
            Some("objectId"),
        );
    // Management calls: unsigned requests are denied.
    let unsigned = raw(reqwest::Client::new().get(format!("{}{path}", server.base))).await;
    unsigned.assert_error(401, "Denied", "Denied by the resource provider.", None);

    assert_eq!(client.send("DELETE", &path, None).await.status, 204);
    assert_eq!(client.send("DELETE", &path, None).await.status, 404);
    assert_eq!(client.send("GET", &path, None).await.status, 404);
}

#[tokio::test]
async fn only_the_preview_has_the_entra_routes() {
    let server =
        TestServer::start_with(Arc::new(ManualClock::new(chrono::Utc::now())), |_| {}).await;
    let client = server.client();
    for version in ["2025-06-30", "2023-10-01", "2021-03-07"] {
        let q = format!("api-version={version}");
        for (method, path) in [
            ("GET", format!("/access/entra/assignments?{q}")),
            ("PATCH", format!("/access/entra/assignments?{q}")),
            ("GET", format!("/access/entra/assignments/{USER_OID}?{q}")),
            ("PUT", format!("/access/entra/assignments/{USER_OID}?{q}")),
            (
                "DELETE",
                format!("/access/entra/assignments/{USER_OID}?{q}"),
            ),
            ("POST", format!("/access/entra/:exchangeAccessToken?{q}")),
        ] {
            client.send(method, &path, Some(b"{}")).await.assert_error(
                404,
                "NotFound",
                "The requested resource was not found.",
                None,
            );
        }
    }
}

#[tokio::test]
async fn list_pages_and_merge_patch() {
    let server =
        TestServer::start_with(Arc::new(ManualClock::new(chrono::Utc::now())), |_| {}).await;
    let client = server.client();
    let mut patch = serde_json::Map::new();
    for n in 0..5 {
        patch.insert(object_id(n), assignment("user", &[APP_ID]));
    }
    let body = Value::Object(patch).to_string();
    let updated = client
        .send(
            "PATCH",
            &format!("/access/entra/assignments?{V}"),
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["value"].as_array().unwrap().len(), 5);

    // Pages of two, following nextLink.
    let mut seen = Vec::new();
    let mut link = format!("/access/entra/assignments?{V}&maxpagesize=2");
    let mut pages = 0;
    loop {
        let page = client.send("GET", &link, None).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let json = page.json();
        let value = json["value"].as_array().unwrap();
        assert!(value.len() <= 2);
        seen.extend(
            value
                .iter()
                .map(|a| a["objectId"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match json["nextLink"].as_str() {
            Some(next) => link = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (0..5).map(object_id).collect::<Vec<_>>());
    assert_eq!(pages, 3);
    let bad = client
        .send(
            "GET",
            &format!("/access/entra/assignments?{V}&maxpagesize=0"),
            None,
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["target"], "maxpagesize");

    // Merge-patch: null removes, a value replaces, others are untouched.
    let body = json!({
        object_id(0): null,
        object_id(1): assignment("group", &[OTHER]),
    })
    .to_string();
    let updated = client
        .send(
            "PATCH",
            &format!("/access/entra/assignments?{V}"),
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(
        client
            .send("GET", &assignment_path(&object_id(0)), None)
            .await
            .status,
        404
    );
    let one = client
        .send("GET", &assignment_path(&object_id(1)), None)
        .await;
    assert_eq!(one.json()["principalType"], "group");
    assert_eq!(one.json()["clientIds"], json!([OTHER]));
    let all = client
        .send("GET", &format!("/access/entra/assignments?{V}"), None)
        .await
        .json();
    assert_eq!(all["value"].as_array().unwrap().len(), 4);
    assert!(all.get("nextLink").is_none());

    // A bad entry rejects the whole patch.
    let body = json!({ object_id(2): null, object_id(3): {"principalType": "user"} }).to_string();
    let bad = client
        .send(
            "PATCH",
            &format!("/access/entra/assignments?{V}"),
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        client
            .send("GET", &assignment_path(&object_id(2)), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_exchange_needs_an_assignment_of_the_user_a_group_or_the_tenant() {
    let issuer = TestIssuer::start().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let config = issuer.config();
    let server = TestServer::start_with(Arc::new(clock.clone()), move |c| {
        c.trusted_issuers = vec![config];
    })
    .await;
    let client = server.client();
    let now = clock.now().timestamp();
    let token = issuer.token(&issuer.entra_claims(now, &[GROUP]));
    let forbidden = |reply: Reply| {
        reply.assert_error(
            403,
            "Forbidden",
            "No assignment allows this user and client application.",
            None,
        )
    };
    let put = |object: String, body: Value| {
        let client = &client;
        async move {
            let reply = client
                .send(
                    "PUT",
                    &assignment_path(&object),
                    Some(body.to_string().as_bytes()),
                )
                .await;
            assert!(
                reply.status == 200 || reply.status == 201,
                "{}",
                reply.text()
            );
        }
    };
    let delete = |object: String| {
        let client = &client;
        async move {
            assert_eq!(
                client
                    .send("DELETE", &assignment_path(&object), None)
                    .await
                    .status,
                204
            );
        }
    };
    let id = format!("8:acs:{}_wf_{TENANT}_{USER_OID}", server.resource_id);
    let allowed = |reply: Reply| {
        assert_eq!(reply.status, 200, "{}", reply.text());
        let json = reply.json();
        assert_eq!(json["identity"]["id"], id);
        let claims = callsign_testkit::payload(json["accessToken"]["token"].as_str().unwrap());
        assert_eq!(claims["skypeid"], id[2..]);
        assert_eq!(claims["exp"], now + 3600, "expires with the Entra token");
        json
    };

    // No assignment.
    forbidden(exchange(&server, Some(&token)).await);
    // A user assignment for another client, then for this one.
    put(USER_OID.into(), assignment("user", &[OTHER])).await;
    forbidden(exchange(&server, Some(&token)).await);
    put(USER_OID.into(), assignment("user", &[OTHER, APP_ID])).await;
    let json = allowed(exchange(&server, Some(&token)).await);
    let introspected = client
        .introspect(json["accessToken"]["token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], id);
    delete(USER_OID.into()).await;

    // A group assignment: only for members.
    put(GROUP.into(), assignment("group", &[APP_ID])).await;
    allowed(exchange(&server, Some(&token)).await);
    let not_member = issuer.token(&issuer.entra_claims(now, &[]));
    forbidden(exchange(&server, Some(&not_member)).await);
    delete(GROUP.into()).await;

    // A tenant assignment: anyone of the tenant.
    put(TENANT.into(), assignment("tenant", &[OTHER])).await;
    forbidden(exchange(&server, Some(&not_member)).await);
    put(TENANT.into(), assignment("tenant", &[APP_ID])).await;
    allowed(exchange(&server, Some(&not_member)).await);

    let invalid = |reply: Reply| {
        reply.assert_error(
            401,
            "InvalidAccessToken",
            "Provided access token is not valid.",
            None,
        )
    };
    invalid(exchange(&server, None).await);
    invalid(exchange(&server, Some("garbage")).await);
    // Wrong audience: a Teams or management token is not accepted here.
    invalid(exchange(&server, Some(&issuer.token(&issuer.teams_claims(now)))).await);
    let mut wrong_aud = issuer.entra_claims(now, &[]);
    wrong_aud["aud"] = "https://communication.azure.com".into();
    invalid(exchange(&server, Some(&issuer.token(&wrong_aud))).await);
    // Signed by another key under the issuer's kid; another issuer; another tenant.
    invalid(
        exchange(
            &server,
            Some(&issuer.forged(&issuer.entra_claims(now, &[]))),
        )
        .await,
    );
    let mut wrong_issuer = issuer.entra_claims(now, &[]);
    wrong_issuer["iss"] = "https://evil.example/v2.0".into();
    invalid(exchange(&server, Some(&issuer.token(&wrong_issuer))).await);
    let mut other_tenant = issuer.entra_claims(now, &[]);
    other_tenant["tid"] = OTHER.into();
    invalid(exchange(&server, Some(&issuer.token(&other_tenant))).await);
    // No communication scope.
    let mut wrong_scope = issuer.entra_claims(now, &[]);
    wrong_scope["scp"] = "User.Read".into();
    invalid(exchange(&server, Some(&issuer.token(&wrong_scope))).await);
    // Expired.
    clock.advance(chrono::Duration::seconds(3600));
    invalid(exchange(&server, Some(&token)).await);
}
