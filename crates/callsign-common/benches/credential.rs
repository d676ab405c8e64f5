//! `get_token` on a cached token: the cost every chat or calling request pays.
//!
//! Run with `cargo bench -p callsign-common --bench credential`.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callsign_common::credential::{CommunicationTokenCredential, CommunicationTokenRefreshOptions};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Tasks hammering one credential in the contended case.
const TASKS: usize = 8;

/// A realistically sized token (ACS tokens are about 1 KB) valid for an hour.
fn token() -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    let payload = format!(r#"{{"exp":{exp},"filler":"{}"}}"#, "x".repeat(600));
    format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        "s".repeat(342)
    )
}

/// A refreshing credential whose token is cached (the refresher is never reached in the loop).
fn credential(runtime: &tokio::runtime::Runtime) -> CommunicationTokenCredential {
    let initial = token();
    runtime.block_on(async {
        CommunicationTokenCredential::new(
            CommunicationTokenRefreshOptions::new(|| async { Ok::<_, std::io::Error>(token()) })
                .with_initial_token(initial)
                .with_refresh_proactively(true),
        )
        .unwrap()
    })
}

fn single_thread(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let credential = credential(&runtime);
    let mut group = c.benchmark_group("get_token_cached");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_thread", |b| {
        b.to_async(&runtime)
            .iter(|| async { credential.get_token(None).await.unwrap() })
    });
    group.finish();
}

fn contended(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let credential = credential(&runtime);
    let mut group = c.benchmark_group("get_token_cached");
    // One iteration = one get_token in each of the tasks, all running at once on the runtime's
    // workers; time is wall-clock for the whole batch.
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_with_input(
        BenchmarkId::new("contended_tasks", TASKS),
        &TASKS,
        |b, &tasks| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..tasks)
                        .map(|_| {
                            let credential = credential.clone();
                            tokio::spawn(async move {
                                for _ in 0..iters {
                                    std::hint::black_box(credential.get_token(None).await.unwrap());
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        },
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = single_thread, contended
}
criterion_main!(benches);
