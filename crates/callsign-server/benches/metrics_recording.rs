//! What the metrics cost on the token path: everything `metrics::record_requests` does for one
//! issue-token request (naming its operation from method and path, counting it by operation and
//! status, its latency in the histogram, the token by algorithm), and the parts alone.
//!
//! Run with `cargo bench -p callsign-server --bench metrics_recording -- --quick`.

use axum::http::{Method, StatusCode};
use callsign_server::http::routes;
use callsign_server::keys::SigningAlg;
use callsign_server::metrics::Metrics;
use callsign_server::store::{self, MemoryStorage, OpenMode};
use callsign_server::StorageConfig;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn recording(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = runtime
        .block_on(store::open(
            &StorageConfig::Memory(MemoryStorage::new()),
            OpenMode::Create,
        ))
        .unwrap();
    let metrics = Arc::new(Metrics::new(backend));
    let path = "/identities/8:acs:1c7e2f3a-0000-4000-8000-000000000001_00000020-aaaa-bbbb-cccc-\
                000000000001/:issueAccessToken";
    let mut group = c.benchmark_group("metrics_recording");
    group.bench_function("issue_token_request", |b| {
        b.iter(|| {
            let started = Instant::now();
            let operation = routes::operation_of(&Method::POST, black_box(path));
            metrics.record_request(operation, StatusCode::OK, started.elapsed());
            metrics.token_issued(SigningAlg::Rs256);
        })
    });
    group.bench_function("operation_of", |b| {
        b.iter(|| routes::operation_of(&Method::POST, black_box(path)))
    });
    group.bench_function("record_request", |b| {
        b.iter(|| {
            metrics.record_request(
                black_box("IssueAccessToken"),
                StatusCode::OK,
                Duration::from_micros(1500),
            )
        })
    });
    group.bench_function("token_issued", |b| {
        b.iter(|| metrics.token_issued(black_box(SigningAlg::Rs256)))
    });
    group.finish();
    // Several threads recording at once (the server's runtime), for contention on the histogram.
    let mut group = c.benchmark_group("metrics_recording_4_threads");
    group.bench_function("issue_token_request", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        for _ in 0..iters {
                            let operation = routes::operation_of(&Method::POST, black_box(path));
                            metrics.record_request(
                                operation,
                                StatusCode::OK,
                                Duration::from_micros(1500),
                            );
                            metrics.token_issued(SigningAlg::Rs256);
                        }
                    });
                }
            });
            // Per request, as each thread saw it.
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, recording);
criterion_main!(benches);
