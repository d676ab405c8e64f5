//! Storage written by earlier callsign releases migrates forward on start and keeps serving:
//! the same resource, users, tokens (valid, revoked and deleted alike), keys and assignments.
//!
//! The fixtures in `fixtures/legacy-035d746/` were written through the HTTP API by the server
//! of commit 035d746 (its `make.sh` says how); `manifest.json` records what they hold. The
//! server here runs on a manual clock one hour after they were made, so their tokens are
//! still within their lifetime.

use callsign_common::AccessKey;
use callsign_server::clock::ManualClock;
use callsign_server::keys::MasterKey;
use callsign_server::{PostgresConfig, StorageConfig};
use callsign_testkit::pg_cluster::PgCluster;
use callsign_testkit::{encode, TestServer};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PREVIEW: &str = "api-version=2025-03-02-preview";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-035d746")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A clock one hour after the fixtures were made.
fn clock(manifest: &Value) -> Arc<ManualClock> {
    let made_at = manifest["made_at"].as_i64().unwrap();
    let at = chrono::DateTime::from_timestamp(made_at + 3600, 0).unwrap();
    Arc::new(ManualClock::new(at))
}

/// Copies a directory tree; git keeps no file modes but the executable bit, so secrets are made
/// owner-only again as the server wrote them.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "access-keys.json" || name.ends_with(".key.pem") {
                let private = std::fs::Permissions::from_mode(0o600);
                std::fs::set_permissions(&target, private).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_written_by_035d746_serves_its_users_tokens_keys_and_assignments() {
    let manifest = manifest();
    let fixture = &manifest["datadir"];
    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path().join("data");
    copy_tree(&fixtures().join("datadir"), &dir);
    let storage = StorageConfig::DataDir(dir.clone());
    let server = TestServer::start_with(clock(&manifest), |config| {
        config.data_dir = Some(dir.clone());
        config.storage = storage;
    })
    .await;
    check_serves(&server, fixture).await;

    // The schema moved forward: assignments are versioned now, readiness (3), the audit trail
    // (4) and its forgotten position (5) have their tables, revocations an index (6), and the
    // webhooks' progress a table (7).
    let db = rusqlite::Connection::open(dir.join("callsign.db")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_written_by_035d746_serves_its_users_tokens_keys_and_assignments() {
    let manifest = manifest();
    let fixture = &manifest["postgres"];
    let cluster = PgCluster::start();
    cluster.psql_file(&fixtures().join("postgres.sql"));
    let master = MasterKey::from_base64(fixture["master_key"].as_str().unwrap()).unwrap();
    let storage = StorageConfig::Postgres(PostgresConfig {
        url: cluster.url(),
        master_key: Arc::new(master),
    });
    let server = TestServer::start_with(clock(&manifest), |config| config.storage = storage).await;
    check_serves(&server, fixture).await;
    let versions =
        cluster.psql_query("SELECT string_agg(version::text, ',') FROM callsign_migrations");
    assert_eq!(
        versions, "1,2,3,4,5,6,7,8",
        "the throttling counts' (4) and audit trail's (5) tables, the feed's order (6), the \
         revocations' index (7) and the webhooks' progress (8) added, nothing applied twice"
    );
}

/// Everything the fixture recorded is served as it was.
async fn check_serves(server: &TestServer, fixture: &Value) {
    let primary = AccessKey::from_base64(fixture["access_keys"]["primary"].as_str().unwrap());
    assert_eq!(server.key, primary.unwrap(), "the same access key");
    assert_eq!(server.resource_id, fixture["resource_id"].as_str().unwrap());
    let kid = fixture["signing_kid"].as_str().unwrap();
    let jwks = server
        .client()
        .send("GET", "/.well-known/jwks.json", None)
        .await;
    let kids: Vec<Value> = jwks.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(
        kids,
        vec![Value::from(kid)],
        "the same signing key, and only it"
    );

    for user in fixture["users"].as_array().unwrap() {
        check_user(server, user, kid).await;
    }
    check_assignments(server, fixture).await;
}

async fn check_user(server: &TestServer, user: &Value, kid: &str) {
    let client = server.client();
    let id = user["id"].as_str().unwrap();
    let label = user["label"].as_str().unwrap();
    for token in user["tokens"].as_array().unwrap() {
        let expected = token["active_at_made_at_plus_1h"].as_bool().unwrap();
        let seen = client.introspect(token["token"].as_str().unwrap()).await;
        assert_eq!(seen["active"], expected, "{label}: {}", token["issued"]);
        if expected {
            assert_eq!(seen["jti"], token["jti"], "{label}");
        }
    }
    let got = client
        .send(
            "GET",
            &format!("/identities/{}?{PREVIEW}", encode(id)),
            None,
        )
        .await;
    if user["state"] == "deleted" {
        assert_eq!(got.status, 404, "{label}: {}", got.text());
        return;
    }
    assert_eq!(got.status, 200, "{label}: {}", got.text());
    assert_eq!(got.json()["id"], id);
    if let Some(custom_id) = user["custom_id"].as_str() {
        assert_eq!(got.json()["customId"], custom_id);
        // The same customId still finds the same user.
        let again = client
            .post(
                &format!("/identities?{PREVIEW}"),
                &serde_json::json!({"customId": custom_id}),
            )
            .await;
        assert_eq!(again.json()["identity"]["id"], id, "{label}");
    }
    // New tokens are signed by the same key and valid.
    let fresh = client.issue_token(id, &["chat"]).await;
    assert_eq!(callsign_testkit::header(&fresh)["kid"], kid);
    assert_eq!(client.introspect(&fresh).await["active"], true, "{label}");
}

async fn check_assignments(server: &TestServer, fixture: &Value) {
    let client = server.client();
    for a in fixture["teams_extension_assignments"].as_array().unwrap() {
        let path = format!(
            "/access/teamsExtension/tenants/{}/assignments/{}?api-version=2025-06-30",
            a["tenantId"].as_str().unwrap(),
            a["objectId"].as_str().unwrap()
        );
        let got = client.send("GET", &path, None).await;
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(got.json()["clientIds"], a["clientIds"]);
        assert_eq!(got.json()["principalType"], a["principalType"]);
    }
    let listed = client
        .send("GET", &format!("/access/entra/assignments?{PREVIEW}"), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let mut seen: Vec<Value> = listed.json()["value"].as_array().unwrap().clone();
    let mut expected: Vec<Value> = fixture["entra_assignments"].as_array().unwrap().clone();
    let by_object = |v: &Value| v["objectId"].as_str().unwrap().to_owned();
    seen.sort_by_key(by_object);
    expected.sort_by_key(by_object);
    assert_eq!(seen.len(), expected.len());
    for (seen, expected) in seen.iter().zip(&expected) {
        for field in ["objectId", "tenantId", "principalType", "clientIds"] {
            assert_eq!(seen[field], expected[field], "{field}");
        }
    }
}
