//! Revocation and deletion are immediate and exact, as introspection reports them: every token
//! issued before a revoke or delete returned is inactive, every token issued after a revoke is
//! active — even when everything happens within one microsecond of a frozen clock.

use callsign_server::clock::ManualClock;
use callsign_testkit::{encode, TestServer};
use proptest::prelude::*;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn frozen_clock() -> ManualClock {
    ManualClock::new(chrono::Utc::now())
}

#[tokio::test]
async fn introspection_follows_the_token_lifecycle() {
    let clock = frozen_clock();
    let server = TestServer::start_manual(clock.clone()).await;
    let client = server.client();
    let id = client.create_user().await;
    let token = client.issue_token(&id, &["chat", "voip"]).await;

    let active = client.introspect(&token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], id);
    assert_eq!(active["scopes"], json!(["chat", "voip"]));
    let claims = callsign_testkit::payload(&token);
    assert_eq!(active["iat"], claims["iat"]);
    assert_eq!(active["exp"], claims["exp"]);
    assert_eq!(active["jti"], claims["jti"]);

    assert_eq!(client.revoke(&id).await.status, 204);
    assert_eq!(
        client.introspect(&token).await,
        json!({"active": false, "reason": "revoked"})
    );
    let after = client.issue_token(&id, &["chat"]).await;
    assert_eq!(client.introspect(&after).await["active"], true);

    let reply = client.delete(&id).await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        client.introspect(&after).await,
        json!({"active": false, "reason": "identityNotFound"})
    );

    // One character of the signature changed: still base64url, no longer the signature.
    let mut tampered = after.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (garbage, reason) in [
        ("", "malformed"),
        ("abc", "malformed"),
        ("a.b.c", "malformed"),
        (&format!("{after}x"), "malformed"),
        (&tampered, "badSignature"),
    ] {
        assert_eq!(
            client.introspect(garbage).await,
            json!({"active": false, "reason": reason}),
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn expired_and_foreign_tokens_are_inactive() {
    let clock = frozen_clock();
    let server = TestServer::start_manual(clock.clone()).await;
    let client = server.client();
    let id = client.create_user().await;
    let reply = client
        .post(
            &format!(
                "/identities/{}/:issueAccessToken?api-version=2023-10-01",
                encode(&id)
            ),
            &json!({"scopes": ["chat"], "expiresInMinutes": 60}),
        )
        .await;
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    clock.advance(chrono::Duration::minutes(59));
    assert_eq!(client.introspect(&token).await["active"], true);
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(
        client.introspect(&token).await,
        json!({"active": false, "reason": "expired"}),
        "expired at exp"
    );

    let other = TestServer::start().await;
    let foreign_client = other.client();
    let foreign_id = foreign_client.create_user().await;
    let foreign = foreign_client.issue_token(&foreign_id, &["chat"]).await;
    assert_eq!(foreign_client.introspect(&foreign).await["active"], true);
    let fresh = client.issue_token(&id, &["chat"]).await;
    assert_eq!(client.introspect(&fresh).await["active"], true);
    assert_eq!(
        client.introspect(&foreign).await,
        json!({"active": false, "reason": "otherResource"})
    );
}

#[tokio::test]
async fn introspection_requires_authentication_and_a_token() {
    let server = TestServer::start().await;
    let reply = callsign_testkit::raw(
        reqwest::Client::new()
            .post(format!("{}/callsign/tokens/:introspect", server.base))
            .body(r#"{"token":"x"}"#),
    )
    .await;
    reply.assert_error(401, "Denied", "Denied by the resource provider.", None);
    let reply = server
        .client()
        .post("/callsign/tokens/:introspect", &json!({}))
        .await;
    reply.assert_error(
        400,
        "ValidationError",
        "Token: The Token field is required.",
        Some("Token"),
    );
}

#[derive(Debug, Clone)]
enum Op {
    Issue,
    Revoke,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => Just(Op::Issue), 1 => Just(Op::Revoke)]
}

/// Any sequence of issues and revokes, then optionally a delete, on a clock that never moves:
/// a token is active exactly when no revoke (or delete) came after it.
#[test]
fn revocation_is_exact_for_any_sequence() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start_manual(frozen_clock()));
    let client = server.client();
    let config = ProptestConfig {
        cases: 40,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..24), delete in any::<bool>())| {
        runtime.block_on(async {
            let id = client.create_user().await;
            let mut tokens: Vec<(String, bool)> = Vec::new();
            for op in &ops {
                match op {
                    Op::Issue => tokens.push((client.issue_token(&id, &["chat"]).await, true)),
                    Op::Revoke => {
                        assert_eq!(client.revoke(&id).await.status, 204);
                        tokens.iter_mut().for_each(|(_, active)| *active = false);
                    }
                }
            }
            if delete {
                let reply = client.delete(&id).await;
                assert_eq!(reply.status, 204);
                tokens.iter_mut().for_each(|(_, active)| *active = false);
            }
            for (i, (token, expected)) in tokens.iter().enumerate() {
                let seen = client.introspect(token).await["active"].as_bool().unwrap();
                assert_eq!(seen, *expected, "token {i} after {ops:?}, delete={delete}");
            }
        });
    });
}

/// Issues race a revoke: tokens whose issue finished before the revoke began are inactive, tokens
/// whose issue began after the revoke returned are active (concurrent ones may go either way).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_is_linearizable_under_concurrent_issues() {
    let server = TestServer::start_manual(frozen_clock()).await;
    let client = server.client();
    let id = client.create_user().await;
    let sequence = Arc::new(AtomicU64::new(0));
    let issuers: Vec<_> = (0..4)
        .map(|_| {
            let (client, id, sequence) = (client.clone(), id.clone(), sequence.clone());
            tokio::spawn(async move {
                let mut issued = Vec::new();
                for _ in 0..50 {
                    let start = sequence.fetch_add(1, Ordering::SeqCst);
                    let token = client.issue_token(&id, &["voip"]).await;
                    let end = sequence.fetch_add(1, Ordering::SeqCst);
                    issued.push((start, end, token));
                }
                issued
            })
        })
        .collect();
    // Let some issues happen first.
    while sequence.load(Ordering::SeqCst) < 40 {
        tokio::task::yield_now().await;
    }
    let revoke_start = sequence.fetch_add(1, Ordering::SeqCst);
    assert_eq!(client.revoke(&id).await.status, 204);
    let revoke_end = sequence.fetch_add(1, Ordering::SeqCst);

    let (mut before, mut after) = (0, 0);
    for task in issuers {
        for (start, end, token) in task.await.unwrap() {
            let active = client.introspect(&token).await["active"].as_bool().unwrap();
            if end < revoke_start {
                assert!(
                    !active,
                    "a token issued before the revoke began is inactive"
                );
                before += 1;
            } else if start > revoke_end {
                assert!(active, "a token issued after the revoke returned is active");
                after += 1;
            }
        }
    }
    assert!(before > 0, "some tokens were issued before the revoke");
    assert!(after > 0, "some tokens were issued after the revoke");
}
