//! The CPU cost of each step of the token path: HMAC verification of a request, raw-id parsing,
//! JWT minting (RS256 and ES256), the identity's token state as a data dir serves it (from the
//! serving process's cache, and read from SQLite on the blocking pool) and token introspection
//! (signature check plus the token state).
//!
//! Run with `cargo bench -p callsign-server --bench token_path`.

use callsign_common::hmac::sign_request;
use callsign_server::audit::PendingEvents;
use callsign_server::auth::{authenticate_hmac, HmacRequest};
use callsign_server::clock::{Stamps, SystemClock};
use callsign_server::domain::{
    tokens, IdentityId, IdentityService, Minutes, ResourceId, Scope, Scopes,
};
use callsign_server::keys::{DataDir, LiveKeys, SigningAlg};
use callsign_server::store::{self, IdentityRecord, OpenMode};
use callsign_server::StorageConfig;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{HeaderMap, HeaderValue};
use std::hint::black_box;
use std::sync::Arc;

fn hmac_verification(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let keys = DataDir::new(dir.path())
        .init(None, chrono::Utc::now(), false)
        .unwrap();
    let body = br#"{"scopes":["chat","voip"]}"#;
    let path = "/identities/8:acs:x/:issueAccessToken?api-version=2023-10-01";
    let now = chrono::Utc::now();
    let signed = sign_request(&keys.access.primary, "POST", path, "localhost", body, now);
    let mut headers = HeaderMap::new();
    headers.insert("x-ms-date", HeaderValue::from_str(&signed.date).unwrap());
    headers.insert(
        "x-ms-content-sha256",
        HeaderValue::from_str(&signed.content_hash).unwrap(),
    );
    headers.insert(
        "authorization",
        HeaderValue::from_str(&signed.authorization).unwrap(),
    );
    let request = HmacRequest {
        method: "POST",
        path_and_query: path,
        host: Some("localhost"),
        headers: &headers,
        body,
    };
    let skew = chrono::Duration::minutes(5);
    let mut group = c.benchmark_group("token_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hmac_verify", |b| {
        b.iter(|| authenticate_hmac(&keys.access, black_box(&request), now, skew).unwrap())
    });
    group.finish();
}

fn raw_id_and_mint(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let keys = DataDir::new(dir.path())
        .init(None, chrono::Utc::now(), false)
        .unwrap();
    let raw = IdentityId::generate(keys.resource_id).as_str().to_owned();
    let id = IdentityId::parse(&raw, keys.resource_id).unwrap();
    let scopes = Scopes::new([Scope::Chat, Scope::Voip]).unwrap();
    let stamp = chrono::Utc::now().timestamp_micros();
    let mut group = c.benchmark_group("token_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_id_parse", |b| {
        b.iter(|| IdentityId::parse(black_box(&raw), keys.resource_id).unwrap())
    });
    group.bench_function("jwt_mint_rs256", |b| {
        b.iter(|| tokens::mint(&keys, black_box(&id), &scopes, Minutes::MIN, stamp))
    });
    let es256 = DataDir::new(dir.path())
        .ensure_signing_alg(SigningAlg::Es256, chrono::Utc::now())
        .unwrap();
    group.bench_function("jwt_mint_es256", |b| {
        b.iter(|| tokens::mint(&es256, black_box(&id), &scopes, Minutes::MIN, stamp))
    });
    group.finish();
}

/// `token_state` of a data dir: served from the cache of a serving process (`OpenMode::Serve`),
/// and read from SQLite on the blocking pool (`OpenMode::Create` keeps no cache).
fn token_state(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("token_path");
    group.throughput(Throughput::Elements(1));
    for (name, mode) in [
        ("token_state_cached", OpenMode::Serve),
        ("token_state_sqlite_read", OpenMode::Create),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageConfig::DataDir(dir.path().join("data"));
        let id = IdentityId::generate(ResourceId::random())
            .as_str()
            .to_owned();
        let backend = runtime.block_on(async {
            let backend = store::open(&storage, mode).await.unwrap();
            let record = IdentityRecord::new(id.clone(), None, 1);
            backend.create_identity(record).await.unwrap();
            backend
        });
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { backend.token_state(black_box(&id)).await.unwrap().unwrap() })
        });
    }
    group.finish();
}

fn introspection(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig::DataDir(dir.path().to_owned());
    let (backend, keys) = runtime.block_on(async {
        let backend = store::open(&storage, OpenMode::Create).await.unwrap();
        backend.init_keys(None, chrono::Utc::now()).await.unwrap();
        let keys = backend.load_keys(chrono::Utc::now()).await.unwrap();
        (backend, keys)
    });
    let live = Arc::new(LiveKeys::new(keys));
    let service = IdentityService::new(backend, live, Arc::new(Stamps::new(Arc::new(SystemClock))));
    let scopes = Scopes::new([Scope::Chat]).unwrap();
    let token = runtime.block_on(async {
        let (_, issued) = service
            .create(None, Some((scopes, Minutes::MIN)), &PendingEvents::none())
            .await
            .unwrap();
        issued.unwrap().token
    });
    let mut group = c.benchmark_group("token_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("introspect", |b| {
        b.to_async(&runtime)
            .iter(|| async { service.introspect(black_box(&token)).await.unwrap() })
    });
    group.finish();
}

criterion_group!(
    benches,
    hmac_verification,
    raw_id_and_mint,
    token_state,
    introspection
);
criterion_main!(benches);
