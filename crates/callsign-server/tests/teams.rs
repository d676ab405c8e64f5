//! The Teams user token exchange and bearer-authenticated management calls, against a local test
//! issuer (generated RSA key, JWKS served on loopback, tokens minted here).

use callsign_testkit::issuer;

use callsign_server::clock::{Clock, ManualClock};
use callsign_server::keys::SigningKey;
use callsign_testkit::{payload, Reply, TestServer};
use issuer::{sign, TestIssuer, APP_ID, TEAMS_AUDIENCE, USER_OID};
use serde_json::{json, Value};
use std::sync::Arc;

const EXCHANGE: &str = "/teamsUser/:exchangeAccessToken?api-version=2023-10-01";
const OTHER_GUID: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";
/// The versions having the exchange, as `api-supported-versions` lists them.
const EXCHANGE_VERSIONS: &str = "2021-03-31-preview1, 2021-10-31-preview, 2022-06-01, 2022-10-01, 2023-10-01, 2025-06-30, 2025-03-02-preview";

fn start_clock() -> ManualClock {
    ManualClock::new(chrono::DateTime::from_timestamp(1_767_081_769, 0).unwrap())
}

async fn server_trusting(issuer: &TestIssuer, clock: &ManualClock) -> TestServer {
    let config = issuer.config();
    TestServer::start_with(Arc::new(clock.clone()), move |c| {
        c.trusted_issuers = vec![config];
    })
    .await
}

async fn exchange(server: &TestServer, body: &Value) -> Reply {
    server.client().post(EXCHANGE, body).await
}

fn body(token: &str) -> Value {
    json!({"token": token, "appId": APP_ID, "userId": USER_OID})
}

fn assert_invalid_token(reply: &Reply) {
    reply.assert_error(
        401,
        "InvalidAccessToken",
        "Provided access token is not valid.",
        None,
    );
    assert!(reply.header("api-supported-versions").is_none());
}

#[tokio::test]
async fn a_valid_teams_token_is_exchanged_for_a_token_that_expires_with_it() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let now = clock.now().timestamp();
    let claims = issuer.teams_claims(now);
    let reply = exchange(&server, &body(&issuer.token(&claims))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["expiresOn"], "2025-12-30T09:02:49.0000000+00:00");
    let token = json["token"].as_str().unwrap();
    let p = payload(token);
    assert_eq!(p["skypeid"], format!("orgid:{USER_OID}"));
    assert_eq!(p["exp"], now + 3600);
    assert_eq!(p["resourceId"], server.resource_id);
    assert!(reply.header("api-supported-versions").is_some());

    // The issued token is one of this resource's: introspection knows it.
    let introspected = server.client().introspect(token).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], format!("8:orgid:{USER_OID}"));

    // azp (v2 tokens) stands for appid.
    let mut v2 = claims.clone();
    v2.as_object_mut().unwrap().remove("appid");
    v2["azp"] = APP_ID.into();
    assert_eq!(
        exchange(&server, &body(&issuer.token(&v2))).await.status,
        200
    );
}

#[tokio::test]
async fn keys_from_a_jwks_file_work() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = issuer.file_config(dir.path());
    let clock = start_clock();
    let server = TestServer::start_with(Arc::new(clock.clone()), move |c| {
        c.trusted_issuers = vec![config];
    })
    .await;
    let token = issuer.token(&issuer.teams_claims(clock.now().timestamp()));
    let reply = exchange(&server, &body(&token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(issuer.fetches(), 0, "a file issuer never fetches");
}

#[tokio::test]
async fn expired_token_is_401_by_the_injected_clock() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let token = issuer.token(&issuer.teams_claims(clock.now().timestamp()));
    assert_eq!(exchange(&server, &body(&token)).await.status, 200);
    clock.advance(chrono::Duration::seconds(3600));
    assert_invalid_token(&exchange(&server, &body(&token)).await);
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let now = clock.now().timestamp();
    let claims = issuer.teams_claims(now);
    let good = issuer.token(&claims);

    // Signed by another key under the issuer's kid.
    assert_invalid_token(&exchange(&server, &body(&issuer.forged(&claims))).await);
    // Tampered payload.
    let mut parts: Vec<&str> = good.split('.').collect();
    let other = issuer.token(&json!({"iss": issuer.issuer, "exp": now + 60}));
    parts[1] = other.split('.').nth(1).unwrap();
    assert_invalid_token(&exchange(&server, &body(&parts.join("."))).await);

    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        issuer.token(&c)
    };
    let cases = [
        (
            "wrong issuer",
            with("iss", "https://evil.example/v2.0".into()),
        ),
        ("wrong tenant", with("tid", OTHER_GUID.into())),
        (
            "management audience",
            with("aud", "https://communication.azure.com".into()),
        ),
        ("no Teams scope", with("scp", "User.Read".into())),
        ("not yet valid", with("nbf", (now + 3600).into())),
        ("empty", String::new()),
        ("garbage", "not-a-jwt".into()),
        (
            "unknown kid",
            sign(&SigningKey::generate().unwrap().0, "nope", &claims),
        ),
    ];
    for (case, token) in cases {
        let reply = exchange(&server, &body(&token)).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text());
        assert_invalid_token(&reply);
    }
    // The audience may carry a trailing slash.
    let slash = with("aud", format!("{TEAMS_AUDIENCE}/").into());
    assert_eq!(exchange(&server, &body(&slash)).await.status, 200);
}

#[tokio::test]
async fn recorded_validation_errors_in_the_services_order() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let token = issuer.token(&issuer.teams_claims(clock.now().timestamp()));

    for missing in [
        json!({}),
        json!({"appId": APP_ID, "userId": USER_OID}),
        json!({"token": null}),
    ] {
        let reply = exchange(&server, &missing).await;
        reply.assert_error(
            400,
            "ValidationError",
            "The body is either missing or doesn't contain any token.",
            None,
        );
        assert!(reply.header("api-supported-versions").is_none());
    }
    // appId and userId are required before the token is looked at (X58, X65, X66).
    exchange(&server, &json!({"token": "x"}))
        .await
        .assert_error(
            400,
            "ValidationError",
            "AppId: The AppId field is required.",
            Some("AppId"),
        );

    for app in [
        json!({"token": token, "userId": USER_OID}),
        body_with(&token, "appId", ""),
    ] {
        let reply = exchange(&server, &app).await;
        reply.assert_error(
            400,
            "ValidationError",
            "AppId: The AppId field is required.",
            Some("AppId"),
        );
        assert!(reply.header("api-supported-versions").is_none());
    }
    for user in [
        json!({"token": token, "appId": APP_ID}),
        body_with(&token, "userId", ""),
    ] {
        let reply = exchange(&server, &user).await;
        reply.assert_error(
            400,
            "ValidationError",
            "UserId: The UserId field is required.",
            Some("UserId"),
        );
    }
    let reply = exchange(&server, &body_with(&token, "appId", "not-a-guid")).await;
    reply.assert_error(
        400,
        "ValidationError",
        "Provided AppId has invalid format.",
        Some("appId"),
    );
    // The versions of this route, as the service lists them (X35, X59-X62, X69, X75).
    assert_eq!(
        reply.header("api-supported-versions"),
        Some(EXCHANGE_VERSIONS)
    );
    exchange(&server, &body_with(&token, "userId", "1234"))
        .await
        .assert_error(
            400,
            "ValidationError",
            "Provided UserId has invalid format.",
            Some("userId"),
        );
    exchange(&server, &body_with(&token, "appId", OTHER_GUID))
        .await
        .assert_error(
            400,
            "ValidationError",
            "AAD application is not the expected one.",
            Some("appId"),
        );
    exchange(&server, &body_with(&token, "userId", OTHER_GUID))
        .await
        .assert_error(
            400,
            "ValidationError",
            "Provided AAD token issued for unexpected user.",
            Some("userId"),
        );
    // Case does not matter for GUIDs.
    let upper =
        json!({"token": token, "appId": APP_ID.to_uppercase(), "userId": USER_OID.to_uppercase()});
    assert_eq!(exchange(&server, &upper).await.status, 200);
}

/// The recorded requests X58 (`appId: ""`), X65 (no `appId`) and X66 (no `userId`) answer the
/// "field is required" 400 whatever the token: the service validates the body before the token.
#[tokio::test]
async fn missing_ids_are_refused_before_the_token_is_verified() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let now = clock.now().timestamp();
    let mut expired = issuer.teams_claims(now - 7200);
    expired["exp"] = (now - 3600).into();
    let tokens = [
        ("valid", issuer.token(&issuer.teams_claims(now))),
        ("expired", issuer.token(&expired)),
        ("forged", issuer.forged(&issuer.teams_claims(now))),
        ("garbage", "Sanitized".to_owned()),
        ("empty", String::new()),
    ];
    for (kind, token) in &tokens {
        let cases = [
            ("X58", body_with(token, "appId", ""), "AppId"),
            ("X65", json!({"token": token, "userId": USER_OID}), "AppId"),
            ("X66", json!({"token": token, "appId": APP_ID}), "UserId"),
            ("both absent", json!({"token": token}), "AppId"),
            ("userId empty", body_with(token, "userId", ""), "UserId"),
        ];
        for (case, request, property) in cases {
            let reply = exchange(&server, &request).await;
            assert_eq!(
                reply.status,
                400,
                "{case} with a {kind} token: {}",
                reply.text()
            );
            reply.assert_error(
                400,
                "ValidationError",
                &format!("{property}: The {property} field is required."),
                Some(property),
            );
            assert!(
                reply.header("api-supported-versions").is_none(),
                "{case} with a {kind} token"
            );
        }
    }
    // With both ids given, a bad token is the 401 again.
    for (kind, token) in &tokens[1..] {
        let reply = exchange(&server, &body(token)).await;
        assert_eq!(reply.status, 401, "{kind}: {}", reply.text());
        assert_invalid_token(&reply);
    }
}

/// The early previews take the token alone (X34, X35): `appId` and `userId` are not fields of theirs
/// and are ignored; the token must still be a valid Teams user token naming its user.
#[tokio::test]
async fn the_early_previews_exchange_the_token_alone() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let now = clock.now().timestamp();
    let token = issuer.token(&issuer.teams_claims(now));
    for version in ["2021-03-31-preview1", "2021-10-31-preview"] {
        let path = format!("/teamsUser/:exchangeAccessToken?api-version={version}");
        for request in [
            json!({"token": token}),
            json!({"token": token, "appId": OTHER_GUID, "userId": "not-a-guid"}),
        ] {
            let reply = server.client().post(&path, &request).await;
            assert_eq!(reply.status, 200, "{version}: {}", reply.text());
            assert_eq!(
                reply.header("api-supported-versions"),
                Some(EXCHANGE_VERSIONS)
            );
            let json = reply.json();
            let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys, ["token", "expiresOn"]);
            let p = payload(json["token"].as_str().unwrap());
            assert_eq!(p["skypeid"], format!("orgid:{USER_OID}"));
            assert_eq!(p["exp"], now + 3600);
            assert_eq!(p["acsScope"], "chat,voip");
        }
        let reply = server.client().post(&path, &json!({})).await;
        reply.assert_error(
            400,
            "ValidationError",
            "The body is either missing or doesn't contain any token.",
            None,
        );
        // A token without a Teams scope or without a user is not a Teams user token.
        let mut no_scope = issuer.teams_claims(now);
        no_scope["scp"] = "User.Read".into();
        let mut no_user = issuer.teams_claims(now);
        no_user.as_object_mut().unwrap().remove("oid");
        for claims in [no_scope, no_user] {
            let reply = server
                .client()
                .post(&path, &json!({"token": issuer.token(&claims)}))
                .await;
            assert_eq!(reply.status, 401, "{version}: {}", reply.text());
        }
    }
}

/// A token that is not valid: 2021-10-31-preview answers `InvalidAccessToken` (X55-X57),
/// 2021-03-31-preview1 an empty 401 without content type (X53, X54); neither lists versions.
#[tokio::test]
async fn the_early_previews_refuse_bad_tokens_as_recorded() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let now = clock.now().timestamp();
    let mut expired = issuer.teams_claims(now - 7200);
    expired["exp"] = (now - 3600).into();
    let bad = [
        String::new(),
        "Sanitized".to_owned(),
        issuer.token(&expired),
        issuer.forged(&issuer.teams_claims(now)),
    ];
    for token in &bad {
        let request = json!({ "token": token });
        let reply = server
            .client()
            .post(
                "/teamsUser/:exchangeAccessToken?api-version=2021-10-31-preview",
                &request,
            )
            .await;
        assert_invalid_token(&reply);

        let reply = server
            .client()
            .post(
                "/teamsUser/:exchangeAccessToken?api-version=2021-03-31-preview1",
                &request,
            )
            .await;
        assert_eq!(reply.status, 401, "{}", reply.text());
        assert!(reply.body.is_empty(), "{}", reply.text());
        assert_eq!(reply.header("content-length"), Some("0"));
        assert!(reply.header("content-type").is_none());
        assert!(reply.header("api-supported-versions").is_none());
    }
}

fn body_with(token: &str, field: &str, value: &str) -> Value {
    let mut b = body(token);
    b[field] = value.into();
    b
}

#[tokio::test]
async fn the_exchange_needs_resource_auth_and_a_version_that_has_it() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let token = issuer.token(&issuer.teams_claims(clock.now().timestamp()));
    let reply = server
        .client()
        .post(
            "/teamsUser/:exchangeAccessToken?api-version=2021-03-07",
            &body(&token),
        )
        .await;
    reply.assert_error(
        404,
        "NotFound",
        "The requested resource was not found.",
        None,
    );

    let unsigned = callsign_testkit::raw(
        reqwest::Client::new()
            .post(format!("{}{EXCHANGE}", server.base))
            .json(&body(&token)),
    )
    .await;
    unsigned.assert_error(401, "Denied", "Denied by the resource provider.", None);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_its_first_use_at_most_every_30_seconds_and_all_daily() {
    let mut issuer = TestIssuer::start().await;
    let clock = start_clock();
    let server = server_trusting(&issuer, &clock).await;
    let now = clock.now().timestamp();
    assert_eq!(
        exchange(&server, &body(&issuer.token(&issuer.teams_claims(now))))
            .await
            .status,
        200
    );
    assert_eq!(issuer.fetches(), 1);
    assert_eq!(
        exchange(&server, &body(&issuer.token(&issuer.teams_claims(now))))
            .await
            .status,
        200
    );
    assert_eq!(issuer.fetches(), 1, "known keys come from the cache");

    issuer.rotate();
    let rotated = issuer.token(&issuer.teams_claims(now));
    // Within 30 s of the last fetch an unknown kid does not fetch again, however often it is tried.
    for _ in 0..5 {
        assert_invalid_token(&exchange(&server, &body(&rotated)).await);
    }
    assert_eq!(issuer.fetches(), 1);
    clock.advance(chrono::Duration::seconds(31));
    assert_eq!(exchange(&server, &body(&rotated)).await.status, 200);
    assert_eq!(issuer.fetches(), 2);
    // Made-up kids now stay rate-limited too.
    let (other, _) = SigningKey::generate().unwrap();
    for _ in 0..3 {
        let fake = sign(&other, "made-up", &issuer.teams_claims(now));
        assert_invalid_token(&exchange(&server, &body(&fake)).await);
    }
    assert_eq!(issuer.fetches(), 2);
    // Known keys are fetched again after 24 h, so a key the issuer withdrew stops being trusted.
    clock.advance(chrono::Duration::hours(23));
    let later = clock.now().timestamp();
    let fresh = issuer.token(&issuer.teams_claims(later));
    assert_eq!(exchange(&server, &body(&fresh)).await.status, 200);
    assert_eq!(issuer.fetches(), 2, "23 h old keys are still fresh");
    clock.advance(chrono::Duration::hours(1));
    let later = clock.now().timestamp();
    let fresh = issuer.token(&issuer.teams_claims(later));
    assert_eq!(exchange(&server, &body(&fresh)).await.status, 200);
    assert_eq!(issuer.fetches(), 3, "24 h old keys are fetched again");
}

#[tokio::test]
async fn bearer_tokens_manage_identities_when_allowed() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let config = issuer.config();
    let admin = "11111111-2222-3333-4444-555555555555";
    let server = TestServer::start_with(Arc::new(clock.clone()), move |c| {
        c.trusted_issuers = vec![config];
        c.management.allowed_object_ids = vec![admin.to_owned()];
        c.management.required_role = Some("Identity.Manage".to_owned());
    })
    .await;
    let now = clock.now().timestamp();
    let create = |token: String| {
        let url = format!("{}/identities?api-version=2023-10-01", server.base);
        async move {
            callsign_testkit::raw(
                reqwest::Client::new()
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"createTokenWithScopes": ["chat"]})),
            )
            .await
        }
    };
    let reply = create(issuer.token(&issuer.management_claims(now, admin))).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert!(reply.json()["accessToken"]["token"].is_string());

    let mut by_role = issuer.management_claims(now, OTHER_GUID);
    by_role["roles"] = json!(["Identity.Manage"]);
    assert_eq!(create(issuer.token(&by_role)).await.status, 201);

    let denied =
        |reply: Reply| reply.assert_error(401, "Denied", "Denied by the resource provider.", None);
    denied(create(issuer.token(&issuer.management_claims(now, OTHER_GUID))).await);
    // A Teams token (another audience) never manages identities, even for an allowed oid.
    let mut teams = issuer.teams_claims(now);
    teams["oid"] = admin.into();
    denied(create(issuer.token(&teams)).await);
    let mut expired = issuer.management_claims(now, admin);
    expired["exp"] = now.into();
    denied(create(issuer.token(&expired)).await);
    denied(create("garbage".to_owned()).await);
}

#[tokio::test]
async fn an_unreachable_jwks_is_a_401_not_a_failure() {
    let issuer = TestIssuer::start().await;
    let clock = start_clock();
    let mut config = issuer.config();
    // A port nothing listens on: bind one, then free it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.jwks_uri = Some(format!("http://{}/keys", closed.local_addr().unwrap()));
    drop(closed);
    let server = TestServer::start_with(Arc::new(clock.clone()), move |c| {
        c.trusted_issuers = vec![config];
    })
    .await;
    let token = issuer.token(&issuer.teams_claims(clock.now().timestamp()));
    assert_invalid_token(&exchange(&server, &body(&token)).await);
    // The server keeps serving.
    assert!(!server.client().create_user().await.is_empty());
}
