//! `callsign-verify` against real callsign servers on loopback: tokens of every signing
//! algorithm verified with the published keys, a rotated key fetched by itself, refusals for
//! everything a token must not get away with, and expiry by an injected clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callsign_common::clock::Clock;
use callsign_server::keys::SigningAlg;
use callsign_testkit::TestServer;
use callsign_verify::{Scope, TokenVerifier, VerifierOptions, VerifyError};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A clock the test sets.
#[derive(Debug)]
struct SetClock(Mutex<DateTime<Utc>>);

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

async fn server(alg: SigningAlg) -> TestServer {
    TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), move |c| {
        c.signing_alg = Some(alg)
    })
    .await
}

fn verifier(server: &TestServer) -> TokenVerifier {
    TokenVerifier::from_endpoint(
        &server.base,
        VerifierOptions::for_resource(server.resource_id.clone()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_every_algorithm_verify_with_the_published_keys() {
    for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
        let server = server(alg).await;
        let client = server.client();
        let user = client.create_user().await;
        let token = client.issue_token(&user, &["chat", "voip"]).await;
        let verified = verifier(&server).verify(&token).await.unwrap();
        assert_eq!(verified.user.id(), user, "{alg:?}");
        assert_eq!(verified.scopes, [Scope::Chat, Scope::Voip]);
        assert_eq!(verified.resource_id, server.resource_id);
        assert!(verified.token_id.is_some());
        let payload = callsign_testkit::payload(&token);
        assert_eq!(
            verified.issued_at.timestamp_micros(),
            payload["iatMicros"].as_i64().unwrap(),
            "to the microsecond"
        );
        assert_eq!(
            verified.expires_on.timestamp(),
            payload["exp"].as_i64().unwrap()
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_is_fetched_when_a_token_names_it() {
    let server = server(SigningAlg::Es256).await;
    let client = server.client();
    let user = client.create_user().await;
    let verifier = TokenVerifier::from_endpoint(
        &server.base,
        VerifierOptions {
            refetch_interval: Duration::ZERO,
            ..VerifierOptions::for_resource(server.resource_id.clone())
        },
    )
    .unwrap();
    let old = client.issue_token(&user, &["chat"]).await;
    verifier.verify(&old).await.unwrap();
    callsign_server::keys::DataDir::new(server.data.path().join("data"))
        .rotate_signing_key(Utc::now())
        .unwrap();
    server.reload_keys().await;
    let new = client.issue_token(&user, &["chat"]).await;
    assert_ne!(
        callsign_testkit::header(&new)["kid"],
        callsign_testkit::header(&old)["kid"]
    );
    verifier.verify(&new).await.unwrap();
    verifier.verify(&old).await.unwrap();
    server.stop().await;
}

/// A token with its payload replaced by `payload` (the signature kept).
fn with_payload(token: &str, payload: &serde_json::Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{}.{}.{}", parts[0], body, parts[2])
}

/// A token with its header replaced by `header`.
fn with_header(token: &str, header: &serde_json::Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    format!("{}.{}.{}", head, parts[1], parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_foreign_and_malformed_tokens_are_refused() {
    let server = server(SigningAlg::Rs256).await;
    let other = server_for_other_resource().await;
    let client = server.client();
    let user = client.create_user().await;
    let token = client.issue_token(&user, &["chat"]).await;
    let verifier = verifier(&server);

    // A longer lifetime, signature kept: refused.
    let mut payload = callsign_testkit::payload(&token);
    payload["exp"] = (payload["exp"].as_i64().unwrap() + 86_400).into();
    assert!(matches!(
        verifier.verify(&with_payload(&token, &payload)).await,
        Err(VerifyError::BadSignature)
    ));
    // Algorithms other than the key's own: "none", HMAC with the public key, another one.
    let mut header = callsign_testkit::header(&token);
    for alg in ["none", "HS256"] {
        header["alg"] = alg.into();
        assert!(matches!(
            verifier.verify(&with_header(&token, &header)).await,
            Err(VerifyError::UnsupportedAlgorithm(a)) if a == alg
        ));
    }
    header["alg"] = "ES256".into();
    assert!(matches!(
        verifier.verify(&with_header(&token, &header)).await,
        Err(VerifyError::BadSignature)
    ));
    header["kid"] = "made-up".into();
    header["alg"] = "RS256".into();
    assert!(matches!(
        verifier.verify(&with_header(&token, &header)).await,
        Err(VerifyError::UnknownKey)
    ));
    for garbage in ["", "a.b", "a.b.c", "not a token at all"] {
        assert!(
            matches!(verifier.verify(garbage).await, Err(VerifyError::Malformed)),
            "{garbage:?}"
        );
    }
    // Another resource's token: its key is not this issuer's.
    let other_client = other.client();
    let other_user = other_client.create_user().await;
    let foreign = other_client.issue_token(&other_user, &["chat"]).await;
    assert!(matches!(
        verifier.verify(&foreign).await,
        Err(VerifyError::UnknownKey)
    ));
    // With the other resource's keys but expecting this resource: another resource's.
    let wrong_resource = TokenVerifier::from_endpoint(
        &other.base,
        VerifierOptions::for_resource(server.resource_id.clone()),
    )
    .unwrap();
    assert!(matches!(
        wrong_resource.verify(&foreign).await,
        Err(VerifyError::OtherResource)
    ));
    server.stop().await;
    other.stop().await;
}

async fn server_for_other_resource() -> TestServer {
    server(SigningAlg::Rs256).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_issue_times_are_checked_with_the_leeway_by_the_clock() {
    let server = server(SigningAlg::EdDsa).await;
    let client = server.client();
    let user = client.create_user().await;
    let token = client.issue_token(&user, &["chat"]).await;
    let jwks = callsign_testkit::raw(
        reqwest::Client::new().get(format!("{}/.well-known/jwks.json", server.base)),
    )
    .await
    .body;
    let payload = callsign_testkit::payload(&token);
    let exp = DateTime::from_timestamp(payload["exp"].as_i64().unwrap(), 0).unwrap();
    let iat = DateTime::from_timestamp(payload["iat"].as_i64().unwrap(), 0).unwrap();
    let clock = Arc::new(SetClock(Mutex::new(exp)));
    let verifier = TokenVerifier::from_jwks(
        &jwks,
        VerifierOptions {
            leeway: Duration::from_secs(30),
            clock: clock.clone(),
            ..VerifierOptions::for_resource(server.resource_id.clone())
        },
    )
    .unwrap();
    let at = |t: DateTime<Utc>| *clock.0.lock().unwrap() = t;
    at(exp + TimeDelta::seconds(29));
    verifier.verify(&token).await.expect("within the leeway");
    at(exp + TimeDelta::seconds(30));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Expired(t)) if t == exp
    ));
    at(iat - TimeDelta::seconds(31));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::NotYetValid(_))
    ));
    at(iat - TimeDelta::seconds(29));
    verifier
        .verify(&token)
        .await
        .expect("a clock a little behind");
    server.stop().await;
}

/// Polls `verifier` on `token` until it is refused (or 10 s pass); returns the refusal and how
/// long it took.
async fn refused_within(
    verifier: &TokenVerifier,
    token: &str,
) -> (Option<VerifyError>, std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        match verifier.verify(token).await {
            Err(e) => return (Some(e), started.elapsed()),
            Ok(_) if started.elapsed() > Duration::from_secs(10) => {
                return (None, started.elapsed())
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_aware_verifier_refuses_what_the_server_revoked_or_deleted() {
    let server = server(SigningAlg::Es256).await;
    let client = server.client();
    let (alice, bob, carol) = (
        client.create_user().await,
        client.create_user().await,
        client.create_user().await,
    );
    // Revoked before the verifier starts: known from the snapshot.
    let carols = client.issue_token(&carol, &["chat"]).await;
    assert_eq!(client.revoke(&carol).await.status, 204);

    let verifier = verifier(&server)
        .follow_revocations(server.key.clone())
        .unwrap();
    verifier.synchronised().await;
    assert!(matches!(
        verifier.verify(&carols).await,
        Err(VerifyError::Revoked)
    ));
    assert!(
        verifier
            .verify(&client.issue_token(&carol, &["chat"]).await)
            .await
            .is_ok(),
        "a token issued after the revoke stands"
    );

    // Revoked while it follows: refused within moments; a new token stands.
    let alices = client.issue_token(&alice, &["chat"]).await;
    verifier.verify(&alices).await.unwrap();
    assert_eq!(client.revoke(&alice).await.status, 204);
    let (refusal, delay) = refused_within(&verifier, &alices).await;
    assert!(matches!(refusal, Some(VerifyError::Revoked)), "{refusal:?}");
    eprintln!("revocation refused by the verifier {delay:?} after the revoke answered");
    let fresh = client.issue_token(&alice, &["chat"]).await;
    verifier.verify(&fresh).await.unwrap();

    // Deleted: every token of the user is refused.
    let bobs = client.issue_token(&bob, &["chat"]).await;
    verifier.verify(&bobs).await.unwrap();
    assert_eq!(client.delete(&bob).await.status, 204);
    let (refusal, _) = refused_within(&verifier, &bobs).await;
    assert!(
        matches!(refusal, Some(VerifyError::IdentityDeleted)),
        "{refusal:?}"
    );
    server.stop().await;
}

/// A verifier made from a document has no issuer to follow.
#[tokio::test]
async fn only_an_endpoints_verifier_follows_revocations() {
    let verifier =
        TokenVerifier::from_jwks(br#"{"keys": []}"#, VerifierOptions::default()).unwrap();
    let key = callsign_common::AccessKey::from_base64("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();
    assert!(verifier.follow_revocations(key).is_err());
}

/// A service behind the guard: a valid token reaches the handler with its claims; no token,
/// a forged one or a revoked one is 401 with a Bearer challenge; a missing scope is 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_lets_only_valid_tokens_with_the_scopes_through() {
    use axum::{middleware, routing::get, Router};
    use callsign_verify::http::{require_token, RequireToken, Verified};

    let server = server(SigningAlg::Es256).await;
    let client = server.client();
    let user = client.create_user().await;
    let verifier = verifier(&server)
        .follow_revocations(server.key.clone())
        .unwrap();
    verifier.synchronised().await;
    let guard = RequireToken::new(Arc::new(verifier)).with_scope(Scope::Chat);
    let app = Router::new()
        .route(
            "/me",
            get(|Verified(token): Verified| async move { token.user.id().to_owned() }),
        )
        .layer(middleware::from_fn_with_state(guard, require_token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/me", listener.local_addr().unwrap());
    let service = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let call = |token: Option<String>| {
        let request = http.get(&url);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { callsign_testkit::raw(request).await }
    };

    let token = client.issue_token(&user, &["chat"]).await;
    let ok = call(Some(token.clone())).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.text(), user);

    let none = call(None).await;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    let mut forged = callsign_testkit::payload(&token);
    forged["acsScope"] = "chat,voip".into();
    let forged = call(Some(with_payload(&token, &forged))).await;
    assert_eq!(forged.status, 401);
    assert!(!forged.text().contains(&token));

    let voip_only = client.issue_token(&user, &["voip"]).await;
    let scoped = call(Some(voip_only)).await;
    assert_eq!(scoped.status, 403);
    assert_eq!(
        scoped.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\"")
    );

    assert_eq!(client.revoke(&user).await.status, 204);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut status = 200;
    while status == 200 && std::time::Instant::now() < deadline {
        status = call(Some(token.clone())).await.status;
    }
    assert_eq!(status, 401, "the revoked token is refused");
    service.abort();
    server.stop().await;
}
