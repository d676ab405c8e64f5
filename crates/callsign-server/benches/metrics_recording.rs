//! What the metrics cost on the token path: everything recorded for one issue-token request
//! (counting it by the operation the dispatcher named and its status, its latency in the
//! histogram, the token by algorithm, and the store wrapper's two timed operations), the parts
//! alone (and naming an operation from method and path, for responses the dispatcher did not
//! name), and — before/after — a router serving an issue-token-shaped request without and
//! with the `record_requests` layer (the layer's whole cost, axum's middleware plumbing included).
//!
//! Run with `cargo bench -p callsign-server --bench metrics_recording -- --quick`.

use axum::http::{Method, Request, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use callsign_server::http::routes;
use callsign_server::keys::SigningAlg;
use callsign_server::metrics::{record_requests, Metrics, Operation, TokenIssued};
use callsign_server::store::{self, MemoryStorage, OpenMode};
use callsign_server::StorageConfig;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_service::Service;

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
            // Named by the dispatcher, which resolved the route anyway.
            let operation = black_box(Operation("IssueAccessToken")).0;
            metrics.record_request(operation, StatusCode::OK, started.elapsed());
            metrics.token_issued(SigningAlg::Rs256);
            // The issue's store operations: the identity read and the token stamp.
            metrics.store_operation("get_identity", started.elapsed(), false);
            metrics.store_operation("record_token_issued", started.elapsed(), false);
        })
    });
    // What naming costs a response the dispatcher did not name (`/healthz`, refusals).
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

    // Before/after: the same router without and with the layer, called in process.
    // Before: the handler as it answered without metrics. After: as the dispatcher answers now,
    // the operation named and the token marked in the response's extensions.
    let plain = || async { (StatusCode::OK, "{}").into_response() };
    let marked = || async {
        let mut response =
            TokenIssued::mark(SigningAlg::Rs256, (StatusCode::OK, "{}").into_response());
        response
            .extensions_mut()
            .insert(Operation("IssueAccessToken"));
        response
    };
    let before: Router = Router::new().fallback(plain);
    let after: Router = Router::new()
        .fallback(marked)
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            record_requests,
        ));
    let request = || {
        Request::post(path)
            .body(axum::body::Body::from(r#"{"scopes":["chat"]}"#))
            .unwrap()
    };
    let mut group = c.benchmark_group("metrics_router");
    for (name, router) in [("without_metrics", before), ("with_metrics", after)] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let mut router = router.clone();
                let request = request();
                async move {
                    let response = router.call(request).await.unwrap();
                    black_box(response.status())
                }
            })
        });
    }
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
                            let operation = black_box(Operation("IssueAccessToken")).0;
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
