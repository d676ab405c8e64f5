//! What verifying a token costs next to the bare signature check of its algorithm (aws-lc-rs,
//! the same key parsed once, the signature and signed bytes already decoded), in the same run: the
//! difference is the verifier's own work (splitting and decoding the token, the header and
//! claims JSON, the key look-up, the checks) and, with revocations, the stamp look-up.
//!
//! Run with `cargo bench -p callsign-verify --bench verification -- --quick`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ParsedPublicKey, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED, ED25519,
    RSA_PKCS1_2048_8192_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callsign_server::domain::{tokens, IdentityId, Minutes, Scope, Scopes};
use callsign_server::keys::{DataDir, SigningAlg};
use callsign_verify::{TokenVerifier, VerifierOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn field(jwk: &serde_json::Value, name: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap()
}

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("verification");
    for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        let data = DataDir::new(dir.path());
        data.init(None, now, false).unwrap();
        let keys = data.ensure_signing_alg(alg, now).unwrap();
        let id = IdentityId::generate(keys.resource_id);
        let scopes = Scopes::new([Scope::Chat]).unwrap();
        let token = tokens::mint(&keys, &id, &scopes, Minutes::MIN, now.timestamp_micros()).token;
        let jwks = keys.ring.jwks();
        let verifier = TokenVerifier::from_jwks(
            jwks.to_string().as_bytes(),
            VerifierOptions::for_resource(keys.resource_id.to_string()),
        )
        .unwrap();
        let kid = callsign_testkit::header(&token)["kid"].clone();
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let name = jwk["alg"].as_str().unwrap().to_lowercase();
        // The key parsed once, as the verifier keeps it: only the signature check is timed.
        let key = match alg {
            SigningAlg::Rs256 => {
                let (n, e) = (field(&jwk, "n"), field(&jwk, "e"));
                let der = RsaPublicKeyComponents { n: &n, e: &e }.as_der().unwrap();
                ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.as_ref()).unwrap()
            }
            SigningAlg::Es256 => {
                let point = [&[0x04][..], &field(&jwk, "x"), &field(&jwk, "y")].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).unwrap()
            }
            SigningAlg::EdDsa => ParsedPublicKey::new(&ED25519, field(&jwk, "x")).unwrap(),
        };
        group.bench_function(format!("bare_signature_check_{name}"), |b| {
            b.iter(|| {
                key.verify_sig(black_box(signed.as_bytes()), &signature)
                    .unwrap()
            })
        });
        group.bench_function(format!("verify_{name}"), |b| {
            // One runtime entry per batch, as a server awaiting `verify` in its handlers.
            b.to_async(&runtime)
                .iter(|| async { verifier.verify(black_box(&token)).await.unwrap() })
        });
    }
    group.finish();
}

criterion_group!(benches, verification);
criterion_main!(benches);
