//! The identity listing at scale, on every backend: 100,000 identities walked page by page while
//! others are created and deleted, nothing skipped or repeated; prints the page latency. A
//! measurement, so ignored by default (figures in the notes, never asserted on time):
//!
//! ```sh
//! cargo nextest run -p callsign-server --test listing_scale --run-ignored only --no-capture
//! ```

use callsign_server::store::{IdentityRecord, Snapshot};
use callsign_testkit::TestStorage;
use std::time::{Duration, Instant};

const IDENTITIES: usize = 100_000;
const PAGE: u32 = 1000;

async fn walk_with_churn(storage: TestStorage, name: &str) {
    let store = storage.open().await;
    let stable: Vec<IdentityRecord> = (0..IDENTITIES)
        .map(|i| IdentityRecord::new(format!("m{i:07}"), None, 1))
        .collect();
    let started = Instant::now();
    let imported = store
        .import_data(Snapshot {
            identities: stable.clone(),
            ..Snapshot::default()
        })
        .await
        .unwrap();
    assert_eq!(imported.identities, IDENTITIES);
    let loaded = started.elapsed();

    let mut seen = Vec::with_capacity(IDENTITIES);
    let mut pages: Vec<Duration> = Vec::new();
    let mut after = None;
    let mut churn = 0;
    loop {
        let asked = Instant::now();
        let page = store
            .list_identities(after.clone(), PAGE, None)
            .await
            .unwrap();
        pages.push(asked.elapsed());
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(
            page.into_iter()
                .map(|r| r.id)
                .filter(|id| id.starts_with('m')),
        );
        // Identities come and go on both sides of the cursor during the walk.
        for prefix in ["a", "m0050000x", "z"] {
            let id = format!("{prefix}{churn:05}");
            store
                .create_identity(IdentityRecord::new(id.clone(), None, 2))
                .await
                .unwrap();
            if churn % 2 == 0 {
                store.delete_identity(id, 3).await.unwrap();
            }
        }
        churn += 1;
    }
    let stable_ids: Vec<String> = stable.into_iter().map(|r| r.id).collect();
    let seen_stable: Vec<String> = seen.into_iter().filter(|id| !id.contains('x')).collect();
    assert_eq!(
        seen_stable.len(),
        IDENTITIES,
        "{name}: nothing skipped or repeated"
    );
    assert_eq!(seen_stable, stable_ids, "{name}: in id order");
    pages.sort();
    let median = pages[pages.len() / 2];
    let p99 = pages[pages.len() * 99 / 100];
    println!(
        "{name}: {IDENTITIES} identities loaded in {loaded:.1?}; {} pages of {PAGE}: median {median:.1?}, p99 {p99:.1?}, max {:.1?}",
        pages.len(),
        pages.last().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --run-ignored only"]
async fn walk_100k_sqlite() {
    walk_with_churn(TestStorage::sqlite(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --run-ignored only"]
async fn walk_100k_postgres() {
    walk_with_churn(TestStorage::postgres(), "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --run-ignored only"]
async fn walk_100k_memory() {
    walk_with_churn(TestStorage::memory(), "memory").await;
}
