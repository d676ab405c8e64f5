//! PostgreSQL-only behaviour (the contract both backends keep is in `store_suite.rs`): keys
//! sealed with the master key and changed under a cluster-wide lock, nodes starting together, a
//! store that fails fast while the database is down and recovers after, and several nodes
//! serving one database over HTTP.

use callsign_common::AccessKey;
use callsign_server::clock::ManualClock;
use callsign_server::keys::{KeyError, MasterKey};
use callsign_server::store::{self, Backend, IdentityRecord, OpenMode, StoreError};
use callsign_server::{PostgresConfig, Server, ServerConfig, StorageConfig};
use callsign_testkit::pg_cluster::PgCluster;
use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn storage(cluster: &PgCluster, master: u8) -> StorageConfig {
    StorageConfig::Postgres(PostgresConfig {
        url: cluster.url(),
        master_key: Arc::new(MasterKey::from_bytes(&[master; 32]).unwrap()),
    })
}

/// The database as one node sees it, sealing with master key `[master; 32]`.
async fn node_store(cluster: &PgCluster, master: u8) -> Arc<dyn Backend> {
    store::open(&storage(cluster, master), OpenMode::Create)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_create_one_resource_sealed_with_the_master_key() {
    let cluster = PgCluster::start();
    let seed = AccessKey::from_bytes(vec![7; 32]);
    let (a, b) = tokio::join!(node_store(&cluster, 1), node_store(&cluster, 1));
    let now = Utc::now();
    let (ra, rb) = tokio::join!(
        a.init_keys(Some(seed.clone()), now),
        b.init_keys(Some(seed.clone()), now)
    );
    ra.unwrap();
    rb.unwrap();
    let (ka, kb) = (
        a.load_keys(now).await.unwrap(),
        b.load_keys(now).await.unwrap(),
    );
    assert_eq!(ka.access.primary, seed);
    assert_eq!(ka.resource_id, kb.resource_id);
    assert_eq!(ka.access, kb.access);
    assert_eq!(ka.ring.current.kid(), kb.ring.current.kid());

    // Another master key cannot open the keys, and says so without leaking anything.
    let wrong = node_store(&cluster, 2).await;
    let err = wrong.init_keys(None, now).await.unwrap_err();
    assert!(matches!(err, KeyError::Sealed(_)), "{err}");
    let err = wrong.load_keys(now).await.unwrap_err();
    assert!(matches!(err, KeyError::Sealed(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_key_material_in_plain_text() {
    let cluster = PgCluster::start();
    let seed = AccessKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
    let keys = node_store(&cluster, 1).await;
    keys.init_keys(Some(seed), Utc::now()).await.unwrap();
    // The other algorithms' keys are sealed too.
    keys.ensure_signing_alg(callsign_server::keys::SigningAlg::Es256, Utc::now())
        .await
        .unwrap();
    let dump =
        std::process::Command::new(callsign_testkit::pg_cluster::pg_bin_dir().join("pg_dump"))
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
    IdentityRecord::new(id.into(), None, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_fails_fast_while_the_database_is_down_and_recovers() {
    let cluster = PgCluster::start();
    let store = node_store(&cluster, 1).await;
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
async fn node(url: &str, clock: ManualClock) -> (callsign_testkit::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
    config.clock = Arc::new(clock);
    config.storage = StorageConfig::Postgres(PostgresConfig {
        url: url.to_owned(),
        master_key: Arc::new(MasterKey::from_bytes(&[1; 32]).unwrap()),
    });
    let server = Server::bind(config).await.unwrap();
    let key = server.live_keys().get().access.primary.clone();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    (callsign_testkit::Client::new(&base, key), dir)
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

/// Rotations started on two nodes at once are serialised by the keys lock: each makes its own
/// key current in turn, every older key stays published, and exactly one key is current after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_on_two_nodes_leave_one_current_key() {
    const ROTATIONS: usize = 8;
    let cluster = PgCluster::start();
    let a = node_store(&cluster, 1).await;
    let b = node_store(&cluster, 1).await;
    let t0 = Utc::now();
    a.init_keys(None, t0).await.unwrap();
    let first = a.load_keys(t0).await.unwrap().ring.current.kid().to_owned();
    let v0 = a.key_version().await.unwrap();
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
    assert_ne!(a.key_version().await.unwrap(), v0);

    let ring = b.load_keys(t0).await.unwrap().ring;
    assert!(kids.contains(&ring.current.kid().to_owned()));
    for kid in kids.iter().chain([&first]) {
        assert!(ring.find(kid).is_some(), "{kid} still verifies");
    }
    let current =
        cluster.psql_query("SELECT count(*) FROM signing_keys WHERE retired_at_us IS NULL");
    assert_eq!(current, "1");
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

/// Listing identities walks the primary key from the cursor: an index range scan, not a scan
/// of the table, however large it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_is_an_index_range_scan() {
    let cluster = PgCluster::start();
    drop(node_store(&cluster, 1).await);
    cluster.psql_query(
        "INSERT INTO identities (id, created_at_us) \
         SELECT '8:acs:r_' || lpad(i::text, 6, '0'), i FROM generate_series(1, 100000) i; \
         ANALYZE identities;",
    );
    let plan = cluster.psql_query(&format!(
        "PREPARE list(text, bigint) AS {}; \
         EXPLAIN (COSTS OFF) EXECUTE list('8:acs:r_050000', 100);",
        callsign_server::store::postgres::LIST_SQL
    ));
    assert!(
        plan.contains("Index Scan using identities_pkey on identities"),
        "{plan}"
    );
    assert!(plan.contains("Index Cond: (id > "), "{plan}");
    assert!(
        !plan.contains("Seq Scan") && !plan.contains("Sort"),
        "{plan}"
    );
}
