//! The store contract, written once and run against both backends: a real SQLite file and a real
//! PostgreSQL cluster started from the installed binaries.

mod common;

use callsign_server::store::{IdentityRecord, PostgresStore, SqliteStore, Store};
use common::pg_cluster::PgCluster;
use std::future::Future;

/// Opens stores over one database; opening again is what a restart (or another node) does.
trait Backend {
    type S: Store + Clone;
    fn open(&self) -> impl Future<Output = Self::S>;
}

struct Sqlite(tempfile::TempDir);

impl Sqlite {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
}

impl Backend for Sqlite {
    type S = SqliteStore;
    async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.0.path().join("callsign.db")).unwrap()
    }
}

struct Postgres(PgCluster);

impl Postgres {
    fn new() -> Self {
        Self(PgCluster::start())
    }
}

impl Backend for Postgres {
    type S = PostgresStore;
    async fn open(&self) -> PostgresStore {
        PostgresStore::connect(&self.0.url()).await.unwrap()
    }
}

/// One test per backend for each contract function.
macro_rules! for_both_backends {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$case(&super::Sqlite::new()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$case(&super::Postgres::new()).await;
                }
            }
        )*
    };
}

for_both_backends!(
    lifecycle_survives_reopen,
    custom_id_is_idempotent_while_live,
    concurrent_creates_with_one_custom_id_agree,
    two_handles_see_each_others_writes_at_once,
    reopening_migrates_nothing_twice,
    revocation_covers_tokens_stamped_by_a_clock_ahead,
);

fn record(id: &str, custom_id: Option<&str>) -> IdentityRecord {
    IdentityRecord {
        id: id.into(),
        custom_id: custom_id.map(Into::into),
        created_at_us: 1,
        last_token_issued_at_us: None,
        revoked_before_us: None,
        deleted_at_us: None,
    }
}

async fn lifecycle_survives_reopen(backend: &impl Backend) {
    let store = backend.open().await;
    let created = store.create_identity(record("a", None)).await.unwrap();
    assert_eq!(created, record("a", None));
    assert!(store.revoke_tokens("a".into(), 10).await.unwrap());
    assert!(store.revoke_tokens("a".into(), 5).await.unwrap());
    store.record_token_issued("a".into(), 20).await.unwrap();
    store.record_token_issued("a".into(), 15).await.unwrap();
    assert!(!store.revoke_tokens("missing".into(), 10).await.unwrap());
    assert_eq!(store.get_identity("missing".into()).await.unwrap(), None);
    drop(store);

    let store = backend.open().await;
    let a = store.get_identity("a".into()).await.unwrap().unwrap();
    assert_eq!(a.revoked_before_us, Some(10), "revocation never moves back");
    assert_eq!(
        a.last_token_issued_at_us,
        Some(20),
        "nor does the last issue"
    );
    assert!(store.delete_identity("a".into(), 30).await.unwrap());
    assert!(!store.delete_identity("a".into(), 31).await.unwrap());
    assert!(!store.revoke_tokens("a".into(), 40).await.unwrap());
    drop(store);

    let store = backend.open().await;
    let a = store.get_identity("a".into()).await.unwrap().unwrap();
    assert_eq!(a.deleted_at_us, Some(30));
    assert!(!a.is_live());
}

async fn custom_id_is_idempotent_while_live(backend: &impl Backend) {
    let store = backend.open().await;
    let first = store
        .create_identity(record("a", Some("bob")))
        .await
        .unwrap();
    let again = store
        .create_identity(record("b", Some("bob")))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(store.get_identity("b".into()).await.unwrap(), None);
    store.delete_identity("a".into(), 5).await.unwrap();
    let fresh = store
        .create_identity(record("c", Some("bob")))
        .await
        .unwrap();
    assert_eq!(fresh.id, "c");
    let other = store
        .create_identity(record("d", Some("alice")))
        .await
        .unwrap();
    assert_eq!(other.id, "d");
}

async fn concurrent_creates_with_one_custom_id_agree(backend: &impl Backend) {
    // Separate handles, like separate nodes; each races to create the same custom id.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = backend.open().await;
        tasks.push(tokio::spawn(async move {
            store
                .create_identity(record(&format!("id-{i}"), Some("carol")))
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every creator got the same identity: {ids:?}");
    let store = backend.open().await;
    let winner = store.get_identity(ids[0].clone()).await.unwrap().unwrap();
    assert_eq!(winner.custom_id.as_deref(), Some("carol"));
}

async fn two_handles_see_each_others_writes_at_once(backend: &impl Backend) {
    let a = backend.open().await;
    let b = backend.open().await;
    a.create_identity(record("x", None)).await.unwrap();
    assert!(b.get_identity("x".into()).await.unwrap().is_some());
    assert!(a.revoke_tokens("x".into(), 7).await.unwrap());
    let seen = b.get_identity("x".into()).await.unwrap().unwrap();
    assert_eq!(seen.revoked_before_us, Some(7));
    assert!(b.delete_identity("x".into(), 9).await.unwrap());
    let seen = a.get_identity("x".into()).await.unwrap().unwrap();
    assert_eq!(seen.deleted_at_us, Some(9));
}

async fn reopening_migrates_nothing_twice(backend: &impl Backend) {
    // Several nodes starting at once each run the migrations; they must not trip over each other.
    let (a, b, c) = tokio::join!(backend.open(), backend.open(), backend.open());
    a.create_identity(record("m", None)).await.unwrap();
    for store in [b, c, backend.open().await] {
        assert!(store.get_identity("m".into()).await.unwrap().is_some());
    }
}

async fn revocation_covers_tokens_stamped_by_a_clock_ahead(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_identity(record("s", None)).await.unwrap();
    // Another node, its clock ahead, issued a token stamped 50; this node revokes at 40.
    store.record_token_issued("s".into(), 50).await.unwrap();
    assert!(store.revoke_tokens("s".into(), 40).await.unwrap());
    let s = store.get_identity("s".into()).await.unwrap().unwrap();
    assert_eq!(s.revoked_before_us, Some(50));
}
