//! PostgreSQL-only behaviour: keys shared through the database (sealed, seeded once, rotated under
//! a lock) and a store that fails fast while the database is down and recovers after.

mod common;

use callsign_common::AccessKey;
use callsign_server::clock::ManualClock;
use callsign_server::keys::{KeyError, KeyKind, MasterKey, PgKeys};
use callsign_server::store::{IdentityRecord, PostgresStore, Store, StoreError};
use callsign_server::{PostgresConfig, Server, ServerConfig};
use chrono::Utc;
use common::pg_cluster::PgCluster;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn master(byte: u8) -> Arc<MasterKey> {
    Arc::new(MasterKey::from_bytes(&[byte; 32]).unwrap())
}

async fn keys_over(cluster: &PgCluster, master_key: Arc<MasterKey>) -> PgKeys {
    let store = PostgresStore::connect(&cluster.url()).await.unwrap();
    PgKeys::new(store.pool().clone(), master_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_share_keys_and_the_seed_only_seeds() {
    let cluster = PgCluster::start();
    let seed = AccessKey::from_bytes(vec![7; 32]);
    let (a, b) = tokio::join!(
        keys_over(&cluster, master(1)),
        keys_over(&cluster, master(1))
    );
    let now = Utc::now();
    // Two nodes starting at once with the same seed create one resource.
    let (ka, kb) = tokio::join!(
        a.init(Some(seed.clone()), now),
        b.init(Some(seed.clone()), now)
    );
    let (ka, kb) = (ka.unwrap(), kb.unwrap());
    assert_eq!(ka.access.primary, seed);
    assert_eq!(ka.resource_id, kb.resource_id);
    assert_eq!(ka.access, kb.access);
    assert_eq!(ka.ring.current.kid(), kb.ring.current.kid());

    // Without a seed a node takes what the database holds; a different seed is refused.
    assert_eq!(a.init(None, now).await.unwrap().access.primary, seed);
    let other = AccessKey::from_bytes(vec![8; 32]);
    let err = a.init(Some(other.clone()), now).await.unwrap_err();
    assert!(matches!(err, KeyError::SeedMismatchDatabase), "{err}");
    assert!(!err.to_string().contains(&other.to_base64()));

    // Another master key cannot open the keys, and says so without leaking anything.
    let wrong = keys_over(&cluster, master(2)).await;
    let err = wrong.init(None, now).await.unwrap_err();
    assert!(matches!(err, KeyError::Sealed(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regeneration_and_rotation_bump_the_version_every_node_polls() {
    let cluster = PgCluster::start();
    let a = keys_over(&cluster, master(1)).await;
    let b = keys_over(&cluster, master(1)).await;
    let t0 = Utc::now();
    let before = a.init(None, t0).await.unwrap();
    let v0 = b.version().await.unwrap();

    a.regenerate_access_key(KeyKind::Secondary).await.unwrap();
    let v1 = b.version().await.unwrap();
    assert!(v1 > v0);
    let seen = b.load(t0).await.unwrap();
    assert_eq!(seen.access.primary, before.access.primary);
    assert_ne!(seen.access.secondary, before.access.secondary);

    let kid = a.rotate_signing_key(t0).await.unwrap();
    assert!(b.version().await.unwrap() > v1);
    let ring = b.load(t0).await.unwrap().ring;
    assert_eq!(ring.current.kid(), kid);
    let old = before.ring.current.kid();
    assert!(ring.find(old).is_some(), "the old key still verifies");
    let much_later = b.load(t0 + chrono::Duration::hours(26)).await.unwrap();
    assert!(
        much_later.ring.find(old).is_none(),
        "and is dropped after 25 h"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_key_material_in_plain_text() {
    let cluster = PgCluster::start();
    let seed = AccessKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
    let keys = keys_over(&cluster, master(1)).await;
    keys.init(Some(seed), Utc::now()).await.unwrap();
    let dump = std::process::Command::new(common::pg_cluster::pg_bin_dir().join("pg_dump"))
        .args(["--data-only", "--dbname", &cluster.url()])
        .output()
        .unwrap();
    assert!(dump.status.success(), "{dump:?}");
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("BEGIN CERTIFICATE") || dump.contains("CERTIFICATE"));
    assert!(!dump.contains("PRIVATE KEY"), "private keys are sealed");
    assert!(!dump.contains("0123456789abcdef"), "access keys are sealed");
    // bytea is dumped as hex: look for the seed's hex too.
    assert!(!dump.contains("30313233343536373839616263646566"));
}

fn record(id: &str) -> IdentityRecord {
    IdentityRecord {
        id: id.into(),
        custom_id: None,
        created_at_us: 1,
        last_token_issued_at_us: None,
        revoked_before_us: None,
        deleted_at_us: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_fails_fast_while_the_database_is_down_and_recovers() {
    let cluster = PgCluster::start();
    let store = PostgresStore::connect(&cluster.url()).await.unwrap();
    store.create_identity(record("before")).await.unwrap();

    cluster.crash();
    let started = Instant::now();
    let err = store.get_identity("before".into()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)));
    let err = store.create_identity(record("during")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)));
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "failed fast: {:?}",
        started.elapsed()
    );

    cluster.start_server();
    // The pool replaces its dead connections on its own; no restart of the store.
    let mut recovered = None;
    for _ in 0..50 {
        match store.get_identity("before".into()).await {
            Ok(found) => {
                recovered = found;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(
        recovered.is_some(),
        "the acknowledged write survived the crash"
    );
    assert_eq!(store.get_identity("during".into()).await.unwrap(), None);
}

/// A node in this process on `url`, reading `clock`; returns a client for it.
async fn node(url: &str, clock: ManualClock) -> (common::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.clock = Arc::new(clock);
    let postgres = PostgresConfig {
        url: url.to_owned(),
        master_key: MasterKey::from_bytes(&[1; 32]).unwrap(),
    };
    let server = Server::bind_postgres(config, postgres).await.unwrap();
    let key = server.live_keys().get().access.primary.clone();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    (common::Client::new(&base, key), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_is_exact_across_nodes_with_skewed_clocks() {
    let cluster = PgCluster::start();
    let now = Utc::now();
    let (ahead, _a) = node(
        &cluster.url(),
        ManualClock::new(now + chrono::Duration::seconds(20)),
    )
    .await;
    let (behind, _b) = node(&cluster.url(), ManualClock::new(now)).await;

    let id = behind.create_user().await;
    // Issued by the node whose clock runs 20 s ahead, then revoked by the other one.
    let early = ahead.issue_token(&id, &["chat"]).await;
    assert_eq!(behind.revoke(&id).await.status, 204);
    assert_eq!(ahead.introspect(&early).await["active"], false);
    assert_eq!(behind.introspect(&early).await["active"], false);
    // Issued after the revoke returned, by the node behind: valid everywhere.
    let late = behind.issue_token(&id, &["chat"]).await;
    assert_eq!(ahead.introspect(&late).await["active"], true);
    assert_eq!(behind.introspect(&late).await["active"], true);
}

/// Teams extension assignments live in the database: what one node writes, another reads.
#[tokio::test]
async fn assignments_are_shared_by_every_node() {
    use callsign_server::store::assignments::TeamsExtensionAssignment;
    use callsign_server::store::AssignmentStore;
    let cluster = PgCluster::start();
    let a = PostgresStore::connect(&cluster.url()).await.unwrap();
    let b = PostgresStore::connect(&cluster.url()).await.unwrap();
    let assignment = |client_ids: Option<Vec<String>>| TeamsExtensionAssignment {
        tenant_id: "t".into(),
        object_id: "o".into(),
        principal_type: "user".into(),
        client_ids,
    };
    assert!(
        a.put_teams_extension_assignment(assignment(None))
            .await
            .unwrap(),
        "created"
    );
    let replaced = assignment(Some(vec!["app".into()]));
    assert!(
        !b.put_teams_extension_assignment(replaced.clone())
            .await
            .unwrap(),
        "replaced"
    );
    let seen = a
        .get_teams_extension_assignment("t".into(), "o".into())
        .await
        .unwrap();
    assert_eq!(seen, Some(replaced));
    assert!(b
        .delete_teams_extension_assignment("t".into(), "o".into())
        .await
        .unwrap());
    assert!(!a
        .delete_teams_extension_assignment("t".into(), "o".into())
        .await
        .unwrap());
    assert_eq!(
        a.get_teams_extension_assignment("t".into(), "o".into())
            .await
            .unwrap(),
        None
    );
}

/// Entra assignments (preview) live in the database: created, paged, bulk-updated and deleted
/// across nodes.
#[tokio::test]
async fn entra_assignments_are_shared_by_every_node() {
    use callsign_server::store::assignments::EntraAssignment;
    use callsign_server::store::AssignmentStore;
    let cluster = PgCluster::start();
    let a = PostgresStore::connect(&cluster.url()).await.unwrap();
    let b = PostgresStore::connect(&cluster.url()).await.unwrap();
    let assignment = |o: &str| EntraAssignment {
        object_id: o.into(),
        tenant_id: "t".into(),
        principal_type: "user".into(),
        client_ids: vec!["app".into()],
    };
    assert!(a.put_entra_assignment(assignment("b")).await.unwrap());
    assert!(!b.put_entra_assignment(assignment("b")).await.unwrap());
    b.update_entra_assignments(vec![assignment("a"), assignment("c")], vec!["b".into()])
        .await
        .unwrap();
    assert_eq!(
        a.list_entra_assignments(None, 1).await.unwrap(),
        vec![assignment("a")]
    );
    assert_eq!(
        a.list_entra_assignments(Some("a".into()), 5).await.unwrap(),
        vec![assignment("c")]
    );
    assert_eq!(
        a.find_entra_assignments(vec!["x".into(), "c".into()])
            .await
            .unwrap(),
        vec![assignment("c")]
    );
    assert_eq!(
        b.get_entra_assignment("a".into()).await.unwrap(),
        Some(assignment("a"))
    );
    assert!(a.delete_entra_assignment("a".into()).await.unwrap());
    assert!(!b.delete_entra_assignment("a".into()).await.unwrap());
}

/// Rotations started on two nodes at once are serialised by the keys lock: each makes its own
/// key current in turn, every older key stays published, and exactly one key is current after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_on_two_nodes_leave_one_current_key() {
    const ROTATIONS: usize = 8;
    let cluster = PgCluster::start();
    let a = Arc::new(keys_over(&cluster, master(1)).await);
    let b = Arc::new(keys_over(&cluster, master(1)).await);
    let t0 = Utc::now();
    let first = a
        .init(None, t0)
        .await
        .unwrap()
        .ring
        .current
        .kid()
        .to_owned();
    let v0 = a.version().await.unwrap();
    let tasks: Vec<_> = (0..ROTATIONS)
        .map(|i| {
            let keys = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { keys.rotate_signing_key(t0).await.unwrap() })
        })
        .collect();
    let mut kids = Vec::new();
    for task in tasks {
        kids.push(task.await.unwrap());
    }
    let distinct: std::collections::HashSet<&String> = kids.iter().collect();
    assert_eq!(distinct.len(), ROTATIONS);
    assert_eq!(a.version().await.unwrap(), v0 + ROTATIONS as i64);

    let ring = b.load(t0).await.unwrap().ring;
    assert!(kids.contains(&ring.current.kid().to_owned()));
    for kid in kids.iter().chain([&first]) {
        assert!(ring.find(kid).is_some(), "{kid} still verifies");
    }
    let store = PostgresStore::connect(&cluster.url()).await.unwrap();
    let client = store.pool().get().await.unwrap();
    let current: i64 = client
        .query_one(
            "SELECT count(*) FROM signing_keys WHERE retired_at_us IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, 1);
}

/// The assignment routes on PostgreSQL, through HTTP: written on one node, read, listed and
/// deleted on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn assignment_routes_work_across_nodes() {
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OBJECT: &str = "207ffef6-9444-41fb-92ab-20eacaae2768";
    const APP: &str = "1fd5118e-2576-4263-8130-9503064c837a";
    let cluster = PgCluster::start();
    let (a, _a) = node(&cluster.url(), ManualClock::new(Utc::now())).await;
    let (b, _b) = node(&cluster.url(), ManualClock::new(Utc::now())).await;

    let teams = format!(
        "/access/teamsExtension/tenants/{TENANT}/assignments/{OBJECT}?api-version=2025-06-30"
    );
    let body = serde_json::json!({"principalType": "user", "clientIds": [APP]}).to_string();
    assert_eq!(
        a.send("PUT", &teams, Some(body.as_bytes())).await.status,
        201
    );
    let got = b.send("GET", &teams, None).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["clientIds"], serde_json::json!([APP]));
    assert_eq!(b.send("DELETE", &teams, None).await.status, 204);
    assert_eq!(a.send("GET", &teams, None).await.status, 404);

    let v = "api-version=2025-03-02-preview";
    let patch = serde_json::json!({
        OBJECT: {"tenantId": TENANT, "principalType": "user", "clientIds": [APP]},
        TENANT: {"tenantId": TENANT, "principalType": "tenant", "clientIds": [APP]},
    })
    .to_string();
    let patched = a
        .send(
            "PATCH",
            &format!("/access/entra/assignments?{v}"),
            Some(patch.as_bytes()),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    let listed = b
        .send("GET", &format!("/access/entra/assignments?{v}"), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["value"].as_array().unwrap().len(), 2);
    let one = format!("/access/entra/assignments/{OBJECT}?{v}");
    assert_eq!(b.send("DELETE", &one, None).await.status, 204);
    assert_eq!(a.send("GET", &one, None).await.status, 404);
}
