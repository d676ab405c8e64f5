//! The audit trail (issue 14 §3) against a real server on loopback: every event type a request
//! makes, each event's fields, the file sink and the stored log agreeing, no secret anywhere, and
//! "who revoked user X" as one SQL query on PostgreSQL.

use callsign_common::hmac::sign_request;
use callsign_server::audit::{
    Actor, AuditConfig, AuditLog, EventType, SinkConfig, DEFAULT_RETENTION_DAYS,
};
use callsign_server::clock::{Clock, ManualClock};
use callsign_server::store::{self, OpenMode};
use callsign_server::StorageConfig;
use callsign_testkit::issuer::{TestIssuer, APP_ID, TENANT, USER_OID};
use callsign_testkit::{raw, TestServer, TestStorage};
use serde_json::{json, Value};
use std::sync::Arc;

const V: &str = "api-version=2023-10-01";
const EXTENSION: &str = "api-version=2025-06-30";
const ENTRA: &str = "api-version=2025-03-02-preview";
const MANAGER: &str = "0b7c9c6a-1b5e-4a8f-9f7e-2c1d3e4f5a6b";
const OTHER_OID: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";

fn events_of(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The file sink's text once it holds `count` events: the sinks follow the stored log, woken by
/// the server's own changes (a few milliseconds) or within a second for other processes'.
async fn sink_text(path: &std::path::Path, count: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= count || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_event_is_recorded_with_its_actor_and_no_secret() {
    let issuer = TestIssuer::start().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let now = clock.now().timestamp();
    let issuers = issuer.config();
    let sink_dir = tempfile::tempdir().unwrap();
    let log_path = sink_dir.path().join("audit.jsonl");
    let sink = log_path.clone();
    let server = TestServer::start_with(Arc::new(clock.clone()), move |c| {
        c.trusted_issuers = vec![issuers];
        c.management.allowed_object_ids = vec![MANAGER.into()];
        c.http.allow_reset = true;
        c.audit = AuditConfig {
            sinks: vec![SinkConfig::File(sink)],
            token_issued: true,
            ..AuditConfig::default()
        };
    })
    .await;
    let client = server.client();
    let secondary = server.client_with(server.secondary.clone());
    let mut secrets = vec![server.key.to_base64(), server.secondary.to_base64()];

    // identity.created, by the primary key, with the client's request id.
    let create_path = format!("/identities?{V}");
    let signed = sign_request(
        &server.key,
        "POST",
        &create_path,
        &server.host,
        b"{}",
        clock.now(),
    );
    secrets.push(signed.authorization.clone());
    let created = client
        .send_with(
            "POST",
            &create_path,
            Some(b"{}"),
            &[("x-ms-client-request-id", "req-create")],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let user = created.json()["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A create with a token: identity.created, then token.issued (enabled here).
    let with_token = client
        .post(&create_path, &json!({"createTokenWithScopes": ["chat"]}))
        .await;
    assert_eq!(with_token.status, 201, "{}", with_token.text());
    let second = with_token.json()["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(
        with_token.json()["accessToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );

    // token.issued, identity.tokensRevoked by the secondary key.
    secrets.push(client.issue_token(&user, &["chat"]).await);
    assert_eq!(secondary.revoke(&user).await.status, 204);

    // identity.deleted by a management bearer token: oid and appid, never the token.
    let bearer = issuer.token(&issuer.management_claims(now, MANAGER));
    secrets.push(bearer.clone());
    let deleted = raw(reqwest::Client::new()
        .delete(format!(
            "{}/identities/{}?{V}",
            server.base,
            callsign_testkit::encode(&user)
        ))
        .bearer_auth(&bearer))
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());

    // assignment.changed: Teams extension put, Entra put, patch and delete.
    let extension_path =
        format!("/access/teamsExtension/tenants/{TENANT}/assignments/{USER_OID}?{EXTENSION}");
    let put = client
        .send("PUT", &extension_path, Some(br#"{"principalType":"user"}"#))
        .await;
    assert_eq!(put.status, 201, "{}", put.text());
    let entra_body = json!({"tenantId": TENANT, "principalType": "user", "clientIds": [APP_ID]});
    let entra_put = client
        .send(
            "PUT",
            &format!("/access/entra/assignments/{OTHER_OID}?{ENTRA}"),
            Some(entra_body.to_string().as_bytes()),
        )
        .await;
    assert_eq!(entra_put.status, 201, "{}", entra_put.text());
    let patch = json!({ USER_OID: entra_body, OTHER_OID: null }).to_string();
    let patched = client
        .send(
            "PATCH",
            &format!("/access/entra/assignments?{ENTRA}"),
            Some(patch.as_bytes()),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());

    // exchange.granted of an Entra token, by the user's own token (assigned by the patch).
    let entra_token = issuer.token(&issuer.entra_claims(now, &[]));
    secrets.push(entra_token.clone());
    let entra = raw(reqwest::Client::new()
        .post(format!(
            "{}/access/entra/:exchangeAccessToken?{ENTRA}",
            server.base
        ))
        .json(&json!({}))
        .bearer_auth(&entra_token))
    .await;
    assert_eq!(entra.status, 200, "{}", entra.text());
    secrets.push(
        entra.json()["accessToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );

    // exchange.granted (Teams extension, by the user's own token), exchange.refused (no token).
    let mut extension_claims = issuer.teams_claims(now);
    extension_claims["scp"] = "TeamsExtension.ManageCalls".into();
    let user_token = issuer.token(&extension_claims);
    secrets.push(user_token.clone());
    let exchange_url = format!(
        "{}/access/teamsExtension/:exchangeAccessToken?{EXTENSION}",
        server.base
    );
    let granted = raw(reqwest::Client::new()
        .post(&exchange_url)
        .json(&json!({}))
        .bearer_auth(&user_token))
    .await;
    assert_eq!(granted.status, 200, "{}", granted.text());
    secrets.push(
        granted.json()["accessToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let refused = raw(reqwest::Client::new().post(&exchange_url).json(&json!({}))).await;
    assert_eq!(refused.status, 401);

    // exchange.granted of a Teams user token, by the access key.
    let teams_token = issuer.token(&issuer.teams_claims(now));
    secrets.push(teams_token.clone());
    let teams = client
        .post(
            &format!("/teamsUser/:exchangeAccessToken?{V}"),
            &json!({"token": teams_token, "appId": APP_ID, "userId": USER_OID}),
        )
        .await;
    assert_eq!(teams.status, 200, "{}", teams.text());
    secrets.push(teams.json()["token"].as_str().unwrap().to_owned());

    // assignment.changed (delete), then data.reset.
    assert_eq!(
        client.send("DELETE", &extension_path, None).await.status,
        204
    );
    let reset = client.send("POST", "/callsign/:reset", None).await;
    assert!(reset.status < 300, "{}", reset.text());

    // Reads make no events.
    assert_eq!(client.send("GET", &extension_path, None).await.status, 404);

    let text = sink_text(&log_path, 15).await;
    let events = events_of(&text);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "identity.created",
            "identity.created",
            "token.issued",
            "token.issued",
            "identity.tokensRevoked",
            "identity.deleted",
            "assignment.changed",
            "assignment.changed",
            "assignment.changed",
            "exchange.granted",
            "exchange.granted",
            "exchange.refused",
            "exchange.granted",
            "assignment.changed",
            "data.reset",
        ]
    );
    let time = clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let primary = json!({"kind": "accessKey", "which": "primary"});
    for event in &events {
        assert_eq!(event["resource"], server.resource_id.as_str(), "{event}");
        assert_eq!(event["time"], time.as_str(), "the server's clock: {event}");
        let address = event["remoteAddress"].as_str().unwrap();
        assert!(address.starts_with("127.0.0.1:"), "{event}");
    }
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()),
        "ids increase"
    );
    let [create, create_with_token, issued_with_create, issued, revoked, deleted, ext_put, entra_put, patched, entra, granted, refused, teams, ext_delete, reset] =
        &events[..]
    else {
        unreachable!()
    };
    assert_eq!(create["subject"], user.as_str());
    assert_eq!(create["actor"], primary);
    assert_eq!(create["clientRequestId"], "req-create");
    assert_eq!(create_with_token["subject"], second.as_str());
    assert_eq!(issued_with_create["subject"], second.as_str());
    assert_eq!(issued["subject"], user.as_str());
    assert_eq!(revoked["subject"], user.as_str());
    assert_eq!(
        revoked["actor"],
        json!({"kind": "accessKey", "which": "secondary"})
    );
    assert_eq!(deleted["subject"], user.as_str());
    assert_eq!(
        deleted["actor"],
        json!({"kind": "bearer", "oid": MANAGER, "appid": APP_ID})
    );
    assert_eq!(ext_put["subject"], USER_OID);
    assert_eq!(
        ext_put["details"],
        json!({"kind": "teamsExtension", "tenantId": TENANT, "change": "put"})
    );
    assert_eq!(entra_put["subject"], OTHER_OID);
    assert_eq!(
        entra_put["details"],
        json!({"kind": "entra", "change": "put"})
    );
    assert_eq!(
        patched["details"],
        json!({"kind": "entra", "change": "patch", "objectIds": [USER_OID, OTHER_OID]})
    );
    assert_eq!(entra["subject"], USER_OID);
    assert_eq!(
        entra["actor"],
        json!({"kind": "bearer", "oid": USER_OID, "appid": APP_ID})
    );
    assert_eq!(entra["details"]["exchange"], "entra");
    assert_eq!(granted["subject"], USER_OID);
    assert_eq!(
        granted["actor"],
        json!({"kind": "bearer", "oid": USER_OID, "appid": APP_ID})
    );
    assert_eq!(granted["details"]["exchange"], "teamsExtension");
    let extension_identity = format!("8:acs:{}_{TENANT}_{USER_OID}", server.resource_id);
    assert_eq!(granted["details"]["identity"], extension_identity.as_str());
    assert_eq!(refused["actor"], json!({"kind": "unauthenticated"}));
    assert_eq!(
        refused["details"],
        json!({"exchange": "teamsExtension", "status": 401, "code": "InvalidAccessToken"})
    );
    assert_eq!(teams["subject"], USER_OID);
    assert_eq!(teams["actor"], primary);
    assert_eq!(
        teams["details"],
        json!({"exchange": "teamsUser", "appId": APP_ID})
    );
    assert_eq!(ext_delete["details"]["change"], "delete");
    assert_eq!(reset["actor"], primary);
    assert!(reset.get("subject").is_none());

    // The stored log holds the same events, with the same ids.
    let backend = store::open(
        &StorageConfig::DataDir(server.data.path().join("data")),
        OpenMode::Existing,
    )
    .await
    .unwrap();
    let stored = backend
        .events_after(callsign_server::store::LogPosition::START, 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), events.len());
    let mut stored_text = String::new();
    for (record, event) in stored.iter().zip(&events) {
        let mut json: Value = serde_json::from_str(&record.json).unwrap();
        json["id"] = record.id.into();
        assert_eq!(&json, event);
        assert_eq!(record.event_type, event["type"].as_str().unwrap());
        stored_text.push_str(&record.json);
    }

    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret.as_str()), "a secret in the file sink");
        assert!(
            !stored_text.contains(secret.as_str()),
            "a secret in the store"
        );
    }
    // Nor any part of a token (a JWT's signature segment) or of an HMAC signature.
    for secret in secrets.iter().filter(|s| s.matches('.').count() == 2) {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(signature) && !stored_text.contains(signature));
    }
    let hmac_signature = signed.authorization.rsplit("Signature=").next().unwrap();
    assert!(!text.contains(hmac_signature) && !stored_text.contains(hmac_signature));
    server.stop().await;
}

/// On PostgreSQL the cluster's events are in one table: "who revoked user X" is one query.
/// Issued tokens are not events unless asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_revoked_a_user_is_one_query_on_postgres() {
    let storage = TestStorage::postgres();
    let config = storage.config();
    let clock = ManualClock::new(chrono::Utc::now());
    let server = TestServer::start_with(Arc::new(clock), move |c| c.storage = config).await;
    let client = server.client();
    let user = client.create_user().await;
    let other = client.create_user().await;
    client.issue_token(&user, &["chat"]).await;
    assert_eq!(client.revoke(&other).await.status, 204);
    let secondary = server.client_with(server.secondary.clone());
    assert_eq!(secondary.revoke(&user).await.status, 204);

    let TestStorage::Postgres(cluster) = &storage else {
        unreachable!()
    };
    let who = cluster.psql_query(&format!(
        "SELECT event->'actor'->>'kind', event->'actor'->>'which' FROM audit_events \
         WHERE type = 'identity.tokensRevoked' AND subject = '{user}' ORDER BY id"
    ));
    assert_eq!(who, "accessKey|secondary");
    let issued =
        cluster.psql_query("SELECT count(*) FROM audit_events WHERE type = 'token.issued'");
    assert_eq!(issued, "0", "token.issued is off by default");
    let created =
        cluster.psql_query("SELECT count(*) FROM audit_events WHERE type = 'identity.created'");
    assert_eq!(created, "2");
    server.stop().await;
}

/// Stored events older than the retention (by the server's clock) are deleted; newer ones stay,
/// and CLI events carry the operator as their actor, on every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_the_retention_expire() {
    for storage in [TestStorage::memory(), TestStorage::sqlite()] {
        let store = storage.open().await;
        let clock = ManualClock::new(chrono::Utc::now());
        let log = AuditLog::for_operator(store.clone(), "resource".into(), Arc::new(clock.clone()));
        let old = log
            .record_operator(EventType::SigningKeyRotated, Some("k1".into()), json!({}))
            .await
            .unwrap();
        assert_eq!(old.actor, Actor::Operator);
        assert_eq!(old.resource, "resource");
        clock.advance(chrono::Duration::days(i64::from(DEFAULT_RETENTION_DAYS)));
        let kept = log
            .record_operator(EventType::SigningKeyRotated, Some("k2".into()), json!({}))
            .await
            .unwrap();
        assert_eq!(
            log.expire().await.unwrap(),
            0,
            "exactly the retention old: kept"
        );
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(log.expire().await.unwrap(), 1);
        let left = log
            .list_after(callsign_server::store::LogPosition::START, 10)
            .await
            .unwrap();
        let left: Vec<_> = left.into_iter().map(|logged| logged.event).collect();
        assert_eq!(left, vec![kept]);
    }
}

/// A change and its event are stored in one transaction: while events cannot be stored, revokes,
/// deletes, creates and assignments fail with 503 and change nothing; once they can, they work
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_never_stored_without_its_event() {
    for storage in [TestStorage::sqlite(), TestStorage::postgres()] {
        let config = storage.config();
        let server =
            TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), move |c| {
                c.storage = config
            })
            .await;
        let client = server.client();
        let user = client.create_user().await;
        let token = client.issue_token(&user, &["chat"]).await;
        let refuse_events = |refuse: bool| match &storage {
            TestStorage::Sqlite(dir) => {
                let db = rusqlite::Connection::open(dir.path().join("data/callsign.db")).unwrap();
                db.execute_batch(if refuse {
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON audit_events \
                     BEGIN SELECT RAISE(ABORT, 'events refused by the test'); END;"
                } else {
                    "DROP TRIGGER refuse_events;"
                })
                .unwrap();
            }
            TestStorage::Postgres(cluster) => {
                cluster.psql_query(if refuse {
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'events refused by the test'; END $$; \
                     CREATE TRIGGER refuse_events BEFORE INSERT ON audit_events \
                     FOR EACH ROW EXECUTE FUNCTION refuse();"
                } else {
                    "DROP TRIGGER refuse_events ON audit_events;"
                });
            }
            TestStorage::Memory(_) => unreachable!(),
        };
        refuse_events(true);
        let revoked = client.revoke(&user).await;
        assert_eq!(revoked.status, 503, "{}", revoked.text());
        assert_eq!(
            client.introspect(&token).await["active"],
            true,
            "not revoked"
        );
        assert_eq!(client.delete(&user).await.status, 503);
        assert_eq!(
            client.introspect(&token).await["active"],
            true,
            "not deleted"
        );
        let listed = || async {
            client
                .send("GET", "/callsign/identities", None)
                .await
                .json()["value"]
                .as_array()
                .unwrap()
                .len()
        };
        let before = listed().await;
        let created = client.post(&format!("/identities?{V}"), &json!({})).await;
        assert_eq!(created.status, 503, "{}", created.text());
        assert_eq!(listed().await, before, "no identity without its event");
        let assignment =
            format!("/access/teamsExtension/tenants/{TENANT}/assignments/{USER_OID}?{EXTENSION}");
        let put = client
            .send("PUT", &assignment, Some(br#"{"principalType":"user"}"#))
            .await;
        assert_eq!(put.status, 503, "{}", put.text());
        assert_eq!(
            client.send("GET", &assignment, None).await.status,
            404,
            "no assignment without its event"
        );

        refuse_events(false);
        assert_eq!(client.revoke(&user).await.status, 204);
        assert_eq!(client.introspect(&token).await["active"], false);
        server.stop().await;
    }
}

/// The sinks follow the stored log: an event an admin command stores while the server runs
/// reaches the server's file, and what was stored before the server started does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_events_reach_a_running_servers_sinks() {
    let storage = TestStorage::sqlite();
    let before = AuditLog::for_operator(
        storage.open().await,
        "resource".into(),
        Arc::new(callsign_server::clock::SystemClock),
    );
    before
        .record_operator(
            EventType::SigningKeyRotated,
            Some("before".into()),
            json!({}),
        )
        .await
        .unwrap();
    drop(before);
    let sink_dir = tempfile::tempdir().unwrap();
    let log_path = sink_dir.path().join("audit.jsonl");
    let sink = log_path.clone();
    let config = storage.config();
    let server = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), move |c| {
        c.storage = config;
        c.audit.sinks = vec![SinkConfig::File(sink)];
    })
    .await;
    let admin = store::open(&storage.config(), OpenMode::Existing)
        .await
        .unwrap();
    let operator = AuditLog::for_operator(
        admin,
        server.resource_id.clone(),
        Arc::new(callsign_server::clock::SystemClock),
    );
    operator
        .record_operator(
            EventType::AccessKeyRegenerated,
            Some("secondary".into()),
            json!({}),
        )
        .await
        .unwrap();
    let events = events_of(&sink_text(&log_path, 1).await);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "accessKey.regenerated");
    assert_eq!(events[0]["actor"], json!({"kind": "operator"}));
    assert_eq!(events[0]["subject"], "secondary");
    server.stop().await;
}

/// An exchange refused although its token verified (no assignment) names the token's user as the
/// actor and subject; one without a valid token is unauthenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_exchange_names_a_verified_caller() {
    let issuer = TestIssuer::start().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let now = clock.now().timestamp();
    let issuers = issuer.config();
    let server = TestServer::start_with(Arc::new(clock), move |c| {
        c.trusted_issuers = vec![issuers];
    })
    .await;
    let mut claims = issuer.teams_claims(now);
    claims["scp"] = "TeamsExtension.ManageCalls".into();
    let token = issuer.token(&claims);
    let url = format!(
        "{}/access/teamsExtension/:exchangeAccessToken?{EXTENSION}",
        server.base
    );
    let unassigned = raw(reqwest::Client::new()
        .post(&url)
        .json(&json!({}))
        .bearer_auth(&token))
    .await;
    assert_eq!(unassigned.status, 403, "{}", unassigned.text());
    let anonymous = raw(reqwest::Client::new().post(&url).json(&json!({}))).await;
    assert_eq!(anonymous.status, 401);

    let backend = store::open(
        &StorageConfig::DataDir(server.data.path().join("data")),
        OpenMode::Existing,
    )
    .await
    .unwrap();
    let events: Vec<Value> = backend
        .events_after(callsign_server::store::LogPosition::START, 10)
        .await
        .unwrap()
        .iter()
        .map(|record| serde_json::from_str(&record.json).unwrap())
        .collect();
    let [refused, anonymous] = &events[..] else {
        panic!("two refusals: {events:?}")
    };
    assert_eq!(refused["type"], "exchange.refused");
    assert_eq!(refused["subject"], USER_OID);
    assert_eq!(
        refused["actor"],
        json!({"kind": "bearer", "oid": USER_OID, "appid": APP_ID})
    );
    assert_eq!(
        refused["details"],
        json!({"exchange": "teamsExtension", "status": 403, "code": "Forbidden"})
    );
    assert_eq!(anonymous["actor"], json!({"kind": "unauthenticated"}));
    assert!(anonymous.get("subject").is_none());
    let text = events.iter().map(Value::to_string).collect::<String>();
    assert!(!text.contains(&token) && !text.contains(token.rsplit('.').next().unwrap()));
    server.stop().await;
}
