//! The storage contract, written once and run against every backend: a real data dir (SQLite
//! file and key files), a real PostgreSQL cluster started from the installed binaries, and the
//! in-memory store.
//! Identities, assignments and keys each have their cases here; what only one backend does
//! (sealing, outages, cluster-wide locks) is tested beside it.

use callsign_common::AccessKey;
use callsign_server::domain::ResourceId;
use callsign_server::keys::access::random_key;
use callsign_server::keys::{
    AccessKeys, KeyError, KeyKind, SigningAlg, SigningKey, TransferredKeys,
};
use callsign_server::store::{
    AuditRecord, EntraAssignment, IdentityRecord, Imported, StoreError, TeamsExtensionAssignment,
    TokenState,
};
use callsign_server::store::{LogPosition, WebhookClaim};
use callsign_testkit::TestStorage;

const START: LogPosition = LogPosition::START;
use chrono::Utc;

/// One test per backend for each contract function.
macro_rules! for_every_backend {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$case(&callsign_testkit::TestStorage::sqlite()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$case(&callsign_testkit::TestStorage::postgres()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn memory() {
                    super::$case(&callsign_testkit::TestStorage::memory()).await;
                }
            }
        )*
    };
}

for_every_backend!(
    lifecycle_survives_reopen,
    custom_id_is_idempotent_while_live,
    concurrent_creates_with_one_custom_id_agree,
    two_handles_see_each_others_writes_at_once,
    reopening_migrates_nothing_twice,
    revocation_covers_tokens_stamped_by_a_clock_ahead,
    token_stamps_follow_revocations_and_later_ones_cover_them,
    token_states_follow_revokes_deletes_and_resets,
    teams_extension_assignments_are_created_replaced_and_deleted,
    entra_assignments_are_paged_updated_and_deleted,
    keys_are_created_once_and_the_seed_only_seeds,
    key_changes_move_the_version_and_survive_reopen,
    signing_algorithms_switch_and_keep_old_keys_published,
    listing_pages_live_identities_by_id,
    a_walk_skips_and_repeats_nothing_while_identities_come_and_go,
    reset_removes_identities_and_assignments_but_keeps_keys,
    export_and_import_move_everything_once_and_refuse_a_taken_custom_id,
    an_empty_store_adopts_a_resource_and_its_keys,
    throttle_counts_are_per_group_and_window,
    changes_store_their_events_only_when_something_changed,
    audit_events_are_appended_in_order_survive_reset_and_reopen_and_expire,
    webhook_progress_is_kept_by_the_lease_holder_and_survives_reopen,
);

async fn token_stamps_follow_revocations_and_later_ones_cover_them(backend: &TestStorage) {
    let store = backend.open().await;
    assert_eq!(store.stamp_token("nobody", 10).await.unwrap(), None);
    store.create_identity(record("t", None)).await.unwrap();
    assert_eq!(store.stamp_token("t", 10).await.unwrap(), Some(10));
    // Revoked by a node whose clock is ahead (cut-off 100): a token stamped later by this node
    // (its clock at 20) is stamped just after the cut-off, so it is valid.
    assert!(store.revoke_tokens("t".into(), 100).await.unwrap());
    assert_eq!(store.stamp_token("t", 20).await.unwrap(), Some(101));
    // Stamped 150 (a clock ahead), then revoked at 120: the revocation covers it.
    assert_eq!(store.stamp_token("t", 150).await.unwrap(), Some(150));
    assert!(store.revoke_tokens("t".into(), 120).await.unwrap());
    let t = store.get_identity("t".into()).await.unwrap().unwrap();
    assert!(t.revoked_before_us.unwrap() >= 150, "{t:?}");
    assert!(store.delete_identity("t".into(), 200).await.unwrap());
    assert_eq!(store.stamp_token("t", 300).await.unwrap(), None);
}

fn record(id: &str, custom_id: Option<&str>) -> IdentityRecord {
    IdentityRecord::new(id.into(), custom_id.map(Into::into), 1)
}

async fn lifecycle_survives_reopen(backend: &TestStorage) {
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

async fn custom_id_is_idempotent_while_live(backend: &TestStorage) {
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

async fn concurrent_creates_with_one_custom_id_agree(backend: &TestStorage) {
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

async fn two_handles_see_each_others_writes_at_once(backend: &TestStorage) {
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

async fn reopening_migrates_nothing_twice(backend: &TestStorage) {
    // Several nodes starting at once each run the migrations; they must not trip over each other.
    let (a, b, c) = tokio::join!(backend.open(), backend.open(), backend.open());
    a.create_identity(record("m", None)).await.unwrap();
    for store in [b, c, backend.open().await] {
        assert!(store.get_identity("m".into()).await.unwrap().is_some());
    }
}

async fn revocation_covers_tokens_stamped_by_a_clock_ahead(backend: &TestStorage) {
    let store = backend.open().await;
    store.create_identity(record("s", None)).await.unwrap();
    // Another node, its clock ahead, issued a token stamped 50; this node revokes at 40.
    store.record_token_issued("s".into(), 50).await.unwrap();
    assert!(store.revoke_tokens("s".into(), 40).await.unwrap());
    let s = store.get_identity("s".into()).await.unwrap().unwrap();
    assert_eq!(s.revoked_before_us, Some(50));
}

async fn token_states_follow_revokes_deletes_and_resets(backend: &TestStorage) {
    let store = backend.open().await;
    assert_eq!(store.token_state("t").await.unwrap(), None);
    store.create_identity(record("t", None)).await.unwrap();
    let live = |revoked_before_us| Some(TokenState::Live { revoked_before_us });
    assert_eq!(store.token_state("t").await.unwrap(), live(None));
    assert!(store.revoke_tokens("t".into(), 10).await.unwrap());
    assert_eq!(store.token_state("t").await.unwrap(), live(Some(10)));
    assert!(store.revoke_tokens("t".into(), 20).await.unwrap());
    assert_eq!(store.token_state("t").await.unwrap(), live(Some(20)));
    assert!(store.delete_identity("t".into(), 30).await.unwrap());
    assert_eq!(
        store.token_state("t").await.unwrap(),
        Some(TokenState::Deleted)
    );
    store.reset().await.unwrap();
    assert_eq!(store.token_state("t").await.unwrap(), None);
}

async fn teams_extension_assignments_are_created_replaced_and_deleted(backend: &TestStorage) {
    let (a, b) = (backend.open().await, backend.open().await);
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
    assert_eq!(
        a.get_teams_extension_assignment("t".into(), "o".into())
            .await
            .unwrap(),
        Some(replaced.clone())
    );
    drop((a, b));
    // Durable: a reopened store (a restart) finds it.
    let a = backend.open().await;
    assert_eq!(
        a.get_teams_extension_assignment("t".into(), "o".into())
            .await
            .unwrap(),
        Some(replaced)
    );
    assert!(a
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

async fn entra_assignments_are_paged_updated_and_deleted(backend: &TestStorage) {
    let (a, b) = (backend.open().await, backend.open().await);
    let assignment = |o: &str| EntraAssignment {
        object_id: o.into(),
        tenant_id: "t".into(),
        principal_type: "user".into(),
        client_ids: vec!["app".into(), "other".into()],
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
        a.find_entra_assignments(vec!["x".into(), "c".into(), "a".into()])
            .await
            .unwrap(),
        vec![assignment("a"), assignment("c")]
    );
    assert_eq!(
        b.get_entra_assignment("a".into()).await.unwrap(),
        Some(assignment("a"))
    );
    assert!(a.delete_entra_assignment("a".into()).await.unwrap());
    assert!(!b.delete_entra_assignment("a".into()).await.unwrap());
    assert_eq!(b.get_entra_assignment("a".into()).await.unwrap(), None);
}

async fn keys_are_created_once_and_the_seed_only_seeds(backend: &TestStorage) {
    let seed = AccessKey::from_bytes(vec![7; 32]);
    let now = Utc::now();
    let store = backend.open().await;
    store.init_keys(Some(seed.clone()), now).await.unwrap();
    let first = store.load_keys(now).await.unwrap();
    assert_eq!(first.access.primary, seed);
    assert_ne!(first.access.secondary, seed);
    assert_eq!(first.ring.current.alg(), SigningAlg::Rs256);
    drop(store);

    // A restart, with or without the same seed, finds the same resource.
    let store = backend.open().await;
    store.init_keys(None, now).await.unwrap();
    store.init_keys(Some(seed.clone()), now).await.unwrap();
    let again = store.load_keys(now).await.unwrap();
    assert_eq!(again.resource_id, first.resource_id);
    assert_eq!(again.access, first.access);
    assert_eq!(again.ring.current.kid(), first.ring.current.kid());

    // A different seed is refused, without naming either key.
    let other = AccessKey::from_bytes(vec![8; 32]);
    let err = store.init_keys(Some(other.clone()), now).await.unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::SeedMismatch(_) | KeyError::SeedMismatchDatabase
        ),
        "{err}"
    );
    assert!(!err.to_string().contains(&other.to_base64()));
    assert!(!err.to_string().contains(&seed.to_base64()));
}

async fn key_changes_move_the_version_and_survive_reopen(backend: &TestStorage) {
    let t0 = Utc::now();
    let (a, b) = (backend.open().await, backend.open().await);
    a.init_keys(None, t0).await.unwrap();
    let before = a.load_keys(t0).await.unwrap();
    let v0 = b.key_version().await.unwrap();
    assert_eq!(
        b.key_version().await.unwrap(),
        v0,
        "stable while nothing changes"
    );

    a.regenerate_access_key(KeyKind::Secondary).await.unwrap();
    let v1 = b.key_version().await.unwrap();
    assert_ne!(v1, v0);
    let seen = b.load_keys(t0).await.unwrap();
    assert_eq!(seen.access.primary, before.access.primary);
    assert_ne!(seen.access.secondary, before.access.secondary);

    let kid = a.rotate_signing_key(t0).await.unwrap();
    assert_ne!(b.key_version().await.unwrap(), v1);
    drop((a, b));
    let reopened = backend.open().await;
    let ring = reopened.load_keys(t0).await.unwrap().ring;
    assert_eq!(ring.current.kid(), kid);
    let old = before.ring.current.kid();
    assert!(ring.find(old).is_some(), "the old key still verifies");
    let much_later = reopened
        .load_keys(t0 + chrono::Duration::hours(26))
        .await
        .unwrap();
    assert!(
        much_later.ring.find(old).is_none(),
        "and is dropped after 25 h"
    );
}

async fn signing_algorithms_switch_and_keep_old_keys_published(backend: &TestStorage) {
    let t0 = Utc::now();
    let store = backend.open().await;
    store.init_keys(None, t0).await.unwrap();
    let rsa = store.load_keys(t0).await.unwrap().ring.current;

    store
        .ensure_signing_alg(SigningAlg::Rs256, t0)
        .await
        .unwrap();
    let same = store.load_keys(t0).await.unwrap().ring.current;
    assert_eq!(same.kid(), rsa.kid(), "the same algorithm rotates nothing");

    let mut kids = vec![rsa.kid().to_owned()];
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
        store.ensure_signing_alg(alg, t0).await.unwrap();
        let ring = store.load_keys(t0).await.unwrap().ring;
        assert_eq!(ring.current.alg(), alg);
        let signature = ring.current.sign(b"message");
        assert!(ring.current.verify(b"message", &signature));
        kids.push(ring.current.kid().to_owned());
    }
    // A rotation keeps the current algorithm.
    let kid = store.rotate_signing_key(t0).await.unwrap();
    drop(store);
    let ring = backend.open().await.load_keys(t0).await.unwrap().ring;
    assert_eq!(ring.current.kid(), kid);
    assert_eq!(ring.current.alg(), SigningAlg::EdDsa);
    for kid in &kids {
        assert!(ring.find(kid).is_some(), "{kid} is still published");
    }
}

async fn listing_pages_live_identities_by_id(backend: &TestStorage) {
    let store = backend.open().await;
    for id in ["c", "a", "e", "b", "d"] {
        let custom = (id == "d").then_some("dora");
        store.create_identity(record(id, custom)).await.unwrap();
    }
    assert!(store.delete_identity("b".into(), 9).await.unwrap());
    let ids = |page: Vec<IdentityRecord>| page.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_identities(None, 2, None).await.unwrap()),
        ["a", "c"]
    );
    assert_eq!(
        ids(store
            .list_identities(Some("c".into()), 2, None)
            .await
            .unwrap()),
        ["d", "e"]
    );
    assert!(store
        .list_identities(Some("e".into()), 2, None)
        .await
        .unwrap()
        .is_empty());
    let dora = store
        .list_identities(None, 10, Some("dora".into()))
        .await
        .unwrap();
    assert_eq!(ids(dora), ["d"]);
    store.record_token_issued("e".into(), 77).await.unwrap();
    let e = store
        .list_identities(Some("d".into()), 1, None)
        .await
        .unwrap();
    assert_eq!(
        e[0].last_token_issued_at_us,
        Some(77),
        "pending stamps show"
    );
}

async fn a_walk_skips_and_repeats_nothing_while_identities_come_and_go(backend: &TestStorage) {
    const STABLE: usize = 300;
    let store = backend.open().await;
    let stable: Vec<String> = (0..STABLE).map(|i| format!("m{i:05}")).collect();
    for id in &stable {
        store.create_identity(record(id, None)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    let mut churn = 0;
    loop {
        let page = store.list_identities(after.clone(), 7, None).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(
            page.into_iter()
                .map(|r| r.id)
                .filter(|id| id.starts_with('m')),
        );
        // Meanwhile others are created before and after the cursor, and deleted.
        for prefix in ["a", "z"] {
            let id = format!("{prefix}{churn:05}");
            store.create_identity(record(&id, None)).await.unwrap();
            if churn % 2 == 0 {
                store.delete_identity(id, 5).await.unwrap();
            }
        }
        churn += 1;
    }
    assert_eq!(seen, stable, "every stable identity once, in order");
}

async fn reset_removes_identities_and_assignments_but_keeps_keys(backend: &TestStorage) {
    let store = backend.open().await;
    let now = Utc::now();
    store.init_keys(None, now).await.unwrap();
    let keys = store.load_keys(now).await.unwrap();
    store
        .create_identity(record("x", Some("xena")))
        .await
        .unwrap();
    store.record_token_issued("x".into(), 3).await.unwrap();
    store.create_identity(record("y", None)).await.unwrap();
    store.delete_identity("y".into(), 4).await.unwrap();
    let assignment = EntraAssignment {
        object_id: "o".into(),
        tenant_id: "t".into(),
        principal_type: "user".into(),
        client_ids: vec!["app".into()],
    };
    store.put_entra_assignment(assignment).await.unwrap();
    let teams = TeamsExtensionAssignment {
        tenant_id: "t".into(),
        object_id: "o".into(),
        principal_type: "user".into(),
        client_ids: None,
    };
    store.put_teams_extension_assignment(teams).await.unwrap();

    store.reset().await.unwrap();
    for id in ["x", "y"] {
        assert_eq!(store.get_identity(id.into()).await.unwrap(), None);
    }
    assert!(store
        .list_identities(None, 10, None)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_entra_assignments(None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .get_teams_extension_assignment("t".into(), "o".into())
            .await
            .unwrap(),
        None
    );
    let after = store.load_keys(now).await.unwrap();
    assert_eq!(after.resource_id, keys.resource_id);
    assert_eq!(after.access, keys.access);
    // The same custom id starts afresh.
    let again = store
        .create_identity(record("x2", Some("xena")))
        .await
        .unwrap();
    assert_eq!(again.id, "x2");
}

async fn export_and_import_move_everything_once_and_refuse_a_taken_custom_id(
    backend: &TestStorage,
) {
    let store = backend.open().await;
    store
        .create_identity(record("live", Some("lee")))
        .await
        .unwrap();
    store.record_token_issued("live".into(), 11).await.unwrap();
    store
        .create_identity(record("revoked", None))
        .await
        .unwrap();
    store.revoke_tokens("revoked".into(), 12).await.unwrap();
    store
        .create_identity(record("gone", Some("gus")))
        .await
        .unwrap();
    store.delete_identity("gone".into(), 13).await.unwrap();
    let teams = TeamsExtensionAssignment {
        tenant_id: "t".into(),
        object_id: "o".into(),
        principal_type: "user".into(),
        client_ids: Some(vec!["app".into()]),
    };
    store.put_teams_extension_assignment(teams).await.unwrap();
    let entra = EntraAssignment {
        object_id: "e".into(),
        tenant_id: "t".into(),
        principal_type: "group".into(),
        client_ids: vec!["app".into()],
    };
    store.put_entra_assignment(entra).await.unwrap();

    let exported = store.export_data().await.unwrap();
    let mut ids: Vec<&str> = exported.identities.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["gone", "live", "revoked"],
        "deleted identities move too"
    );
    assert_eq!(exported.teams_extension.len(), 1);
    assert_eq!(exported.entra.len(), 1);

    store.reset().await.unwrap();
    let imported = store.import_data(exported.clone()).await.unwrap();
    assert_eq!(
        imported,
        Imported {
            identities: 3,
            assignments: 2
        }
    );
    let mut again = store.export_data().await.unwrap();
    let mut original = exported.clone();
    for snapshot in [&mut again, &mut original] {
        snapshot.identities.sort_by(|a, b| a.id.cmp(&b.id));
    }
    assert_eq!(again, original, "everything as it was, stamps included");

    let twice = store.import_data(exported.clone()).await.unwrap();
    assert_eq!(twice.identities, 0, "importing again adds nothing");

    // A live identity of the store holding one of the file's custom ids under another id.
    store.reset().await.unwrap();
    store
        .create_identity(record("other", Some("lee")))
        .await
        .unwrap();
    let err = store.import_data(exported).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::CustomIdTaken(c) if c == "lee"),
        "{err}"
    );
    assert_eq!(
        store.get_identity("live".into()).await.unwrap(),
        None,
        "nothing imported"
    );
}

async fn an_empty_store_adopts_a_resource_and_its_keys(backend: &TestStorage) {
    let now = Utc::now();
    let resource = ResourceId::random();
    let (current, _) = SigningKey::generate_with(SigningAlg::Es256).unwrap();
    let (retired, _) = SigningKey::generate().unwrap();
    let keys = TransferredKeys {
        access: AccessKeys {
            primary: random_key(),
            secondary: random_key(),
        },
        current: current.pem().clone(),
        retired: vec![(retired.pem().clone(), now - chrono::Duration::hours(1))],
    };
    let store = backend.open().await;
    store
        .adopt_keys(resource, Some(keys.clone()), now)
        .await
        .unwrap();
    let adopted = store.load_keys(now).await.unwrap();
    assert_eq!(adopted.resource_id, resource);
    assert_eq!(adopted.access, keys.access);
    assert_eq!(adopted.ring.current.kid(), current.kid());
    assert!(adopted.ring.find(retired.kid()).is_some());
    // A server starting on it keeps what it adopted.
    store.init_keys(None, now).await.unwrap();
    assert_eq!(store.load_keys(now).await.unwrap().access, keys.access);

    store.adopt_keys(resource, None, now).await.unwrap();
    let other = ResourceId::random();
    let err = store.adopt_keys(other, None, now).await.unwrap_err();
    assert!(matches!(err, KeyError::OtherResource { .. }), "{err}");
}

async fn throttle_counts_are_per_group_and_window(backend: &TestStorage) {
    let store = backend.open().await;
    assert_eq!(store.count_request("issue", 30).await.unwrap(), 1);
    assert_eq!(store.count_request("issue", 30).await.unwrap(), 2);
    assert_eq!(store.count_request("revoke", 30).await.unwrap(), 1);
    // A new window starts from one, and the counts of the earlier one are not added to it.
    assert_eq!(store.count_request("issue", 60).await.unwrap(), 1);
    assert_eq!(store.count_request("issue", 60).await.unwrap(), 2);
    assert_eq!(store.count_request("revoke", 30).await.unwrap(), 2);
    // Concurrent requests each see a count of their own.
    let counts = count_at_once(&store, 20).await;
    assert_eq!(counts, (3..23).collect::<Vec<u64>>());
    // A reset starts every count afresh.
    store.reset().await.unwrap();
    assert_eq!(store.count_request("issue", 60).await.unwrap(), 1);
    assert_eq!(store.count_request("revoke", 30).await.unwrap(), 1);
}

/// Counts `n` issue requests in window 60 at once and returns the counts they saw, sorted.
async fn count_at_once(
    store: &std::sync::Arc<dyn callsign_server::store::Backend>,
    n: usize,
) -> Vec<u64> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let store = store.clone();
        tasks.spawn(async move { store.count_request("issue", 60).await.unwrap() });
    }
    let mut counts = tasks.join_all().await;
    counts.sort_unstable();
    counts
}

fn audit_record(time_us: i64, event_type: &str, subject: Option<&str>) -> AuditRecord {
    AuditRecord {
        id: 0,
        commit: 0,
        time_us,
        event_type: event_type.into(),
        subject: subject.map(Into::into),
        json: format!(r#"{{"type":"{event_type}","n":{time_us}}}"#),
    }
}

async fn audit_events_are_appended_in_order_survive_reset_and_reopen_and_expire(
    backend: &TestStorage,
) {
    let store = backend.open().await;
    assert_eq!(store.events_after(START, 10).await.unwrap(), vec![]);
    assert_eq!(store.forgotten_through().await.unwrap(), START);
    let mut ids = Vec::new();
    for (t, ty, subject) in [
        (1_000_000, "identity.created", Some("a")),
        (2_000_000, "identity.tokensRevoked", Some("a")),
        (3_000_000, "data.reset", None),
    ] {
        ids.push(
            store
                .append_event(audit_record(t, ty, subject))
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    store.reset().await.unwrap();
    drop(store);

    let store = backend.open().await;
    let all = store.events_after(START, 10).await.unwrap();
    assert_eq!(all.len(), 3, "kept across a reset and a reopen");
    for (record, id) in all.iter().zip(&ids) {
        assert_eq!(record.id, *id);
    }
    let second = &all[1];
    assert_eq!(second.time_us, 2_000_000);
    assert_eq!(second.event_type, "identity.tokensRevoked");
    assert_eq!(second.subject.as_deref(), Some("a"));
    let json: serde_json::Value = serde_json::from_str(&second.json).unwrap();
    assert_eq!(json["n"], 2_000_000);
    assert_eq!(all[2].subject, None);

    let page = store.events_after(all[0].position(), 1).await.unwrap();
    assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(store.latest_position().await.unwrap(), all[2].position());
    let newest = store.newest_events(2).await.unwrap();
    assert_eq!(
        newest.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );

    assert_eq!(store.delete_events_before(2_000_000).await.unwrap(), 1);
    let left = store.events_after(START, 10).await.unwrap();
    assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), ids[1..]);
    assert_eq!(
        store.forgotten_through().await.unwrap(),
        all[0].position(),
        "a reader behind the first event has missed it"
    );
    assert_eq!(store.delete_events_before(0).await.unwrap(), 0);
    assert_eq!(store.forgotten_through().await.unwrap(), all[0].position());
    let next = store
        .append_event(audit_record(4_000_000, "identity.deleted", Some("a")))
        .await
        .unwrap();
    assert!(next > ids[2], "ids are never reused");
}

/// The types of the stored events after `after`, in order.
async fn event_types_after(
    store: &dyn callsign_server::store::Backend,
    after: LogPosition,
) -> Vec<String> {
    let events = store.events_after(after, 100).await.unwrap();
    events.into_iter().map(|e| e.event_type).collect()
}

async fn changes_store_their_events_only_when_something_changed(backend: &TestStorage) {
    let store = backend.open().await;
    assert_eq!(store.latest_position().await.unwrap(), START);
    let ev = |ty: &str, subject: &str| vec![audit_record(1, ty, Some(subject))];

    let created = store
        .create_identity_with_events(record("a", Some("bob")), ev("identity.created", "a"))
        .await
        .unwrap();
    assert_eq!(created.id, "a");
    // The live identity with that custom id is returned: nothing changed, nothing recorded.
    let again = store
        .create_identity_with_events(record("b", Some("bob")), ev("identity.created", "b"))
        .await
        .unwrap();
    assert_eq!(again.id, "a");
    assert!(store
        .revoke_tokens_with_events("a".into(), 5, ev("identity.tokensRevoked", "a"))
        .await
        .unwrap());
    assert!(!store
        .revoke_tokens_with_events("nobody".into(), 5, ev("identity.tokensRevoked", "nobody"))
        .await
        .unwrap());
    assert!(store
        .delete_identity_with_events("a".into(), 6, ev("identity.deleted", "a"))
        .await
        .unwrap());
    assert!(!store
        .delete_identity_with_events("a".into(), 7, ev("identity.deleted", "a"))
        .await
        .unwrap());
    let stored = store.events_after(START, 100).await.unwrap();
    let subjects: Vec<_> = stored.iter().map(|e| e.subject.as_deref()).collect();
    assert_eq!(
        event_types_after(store.as_ref(), START).await,
        [
            "identity.created",
            "identity.tokensRevoked",
            "identity.deleted"
        ]
    );
    assert_eq!(subjects, [Some("a"); 3]);
    // The revoke's and the delete's events carry the stamps stored.
    let stored_a = store.get_identity("a".into()).await.unwrap().unwrap();
    let details = |i: usize| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&stored[i].json).unwrap()["details"].clone()
    };
    assert_eq!(
        details(1)["revokedBeforeMicros"],
        stored_a.revoked_before_us.unwrap()
    );
    assert_eq!(details(2)["deletedAtMicros"], 6);
    // The snapshot lists what was revoked or deleted, and nothing else.
    store.create_identity(record("z", None)).await.unwrap();
    let stamped = store.list_revocations(None, 10).await.unwrap();
    assert_eq!(
        stamped.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(stamped[0].deleted_at_us, Some(6));
    assert!(store
        .list_revocations(Some("a".into()), 10)
        .await
        .unwrap()
        .is_empty());
    let latest = store.latest_position().await.unwrap();
    assert_eq!(latest, stored.last().unwrap().position());

    store
        .reset_with_events(vec![audit_record(8, "data.reset", None)])
        .await
        .unwrap();
    assert_eq!(
        event_types_after(store.as_ref(), latest).await,
        ["data.reset"]
    );
    // Assignments: a put always changes, a delete only what exists.
    let extension = TeamsExtensionAssignment {
        tenant_id: "t".into(),
        object_id: "o".into(),
        principal_type: callsign_server::store::assignments::PrincipalType::parse("user"),
        client_ids: None,
    };
    let latest = store.latest_position().await.unwrap();
    store
        .put_teams_extension_assignment_with_events(extension, ev("assignment.changed", "o"))
        .await
        .unwrap();
    assert!(store
        .delete_teams_extension_assignment_with_events(
            "t".into(),
            "o".into(),
            ev("assignment.changed", "o")
        )
        .await
        .unwrap());
    assert!(!store
        .delete_teams_extension_assignment_with_events(
            "t".into(),
            "o".into(),
            ev("assignment.changed", "o")
        )
        .await
        .unwrap());
    let entra = EntraAssignment {
        object_id: "e".into(),
        tenant_id: "t".into(),
        principal_type: callsign_server::store::assignments::PrincipalType::parse("user"),
        client_ids: vec!["app".into()],
    };
    store
        .put_entra_assignment_with_events(entra.clone(), ev("assignment.changed", "e"))
        .await
        .unwrap();
    store
        .update_entra_assignments_with_events(vec![entra], vec![], ev("assignment.changed", "e"))
        .await
        .unwrap();
    assert!(store
        .delete_entra_assignment_with_events("e".into(), ev("assignment.changed", "e"))
        .await
        .unwrap());
    assert!(!store
        .delete_entra_assignment_with_events("e".into(), ev("assignment.changed", "e"))
        .await
        .unwrap());
    assert_eq!(
        event_types_after(store.as_ref(), latest).await,
        ["assignment.changed"; 5]
    );
    // The plain forms store no events.
    store.create_identity(record("c", None)).await.unwrap();
    assert!(store.revoke_tokens("c".into(), 9).await.unwrap());
    assert!(store.delete_identity("c".into(), 10).await.unwrap());
    assert_eq!(store.events_after(START, 100).await.unwrap().len(), 9);
}

async fn webhook_progress_is_kept_by_the_lease_holder_and_survives_reopen(backend: &TestStorage) {
    let store = backend.open().await;
    let hook = "http://127.0.0.1:9/hook";
    let held = |delivered| WebhookClaim::Held { delivered };
    let single_process = store.backend_name() == "sqlite";
    // A data dir's positions are ids alone (one writer commits in id order).
    let position = |commit, id| LogPosition {
        commit: if single_process { 0 } else { commit },
        id,
    };
    // New: nothing delivered yet.
    assert_eq!(
        store.claim_webhook(hook, "a", 0, 1_000).await.unwrap(),
        held(None)
    );
    let first = position(7, 3);
    assert!(store.webhook_delivered(hook, "a", first).await.unwrap());
    // Renewed by its holder, with its progress.
    assert_eq!(
        store.claim_webhook(hook, "a", 500, 1_500).await.unwrap(),
        held(Some(first))
    );
    // Another webhook is apart.
    assert_eq!(
        store
            .claim_webhook("http://127.0.0.1:9/other", "b", 500, 1_500)
            .await
            .unwrap(),
        held(None)
    );
    let other = store.claim_webhook(hook, "b", 1_000, 2_000).await.unwrap();
    if single_process {
        // A data dir serves one process: a holder found is a dead one, replaced at once.
        assert_eq!(other, held(Some(first)));
        assert!(!store.webhook_delivered(hook, "a", START).await.unwrap());
    } else {
        // Nodes take turns: b waits for a's lease to run out.
        assert_eq!(other, WebhookClaim::Busy);
        assert!(!store.webhook_delivered(hook, "b", START).await.unwrap());
        assert_eq!(
            store.claim_webhook(hook, "b", 1_500, 2_500).await.unwrap(),
            held(Some(first))
        );
        // a lost it: its late acknowledgement is not recorded.
        assert!(!store.webhook_delivered(hook, "a", START).await.unwrap());
    }
    let second = position(9, 5);
    assert!(store.webhook_delivered(hook, "b", second).await.unwrap());
    drop(store);

    let store = backend.open().await;
    assert_eq!(
        store.claim_webhook(hook, "b", 3_000, 4_000).await.unwrap(),
        held(Some(second)),
        "durable across a reopen"
    );
}
