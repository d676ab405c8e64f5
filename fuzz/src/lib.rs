//! What the fuzz targets share: fixed keys, a fixed clock and the small input grammar the
//! structured targets read. Everything here is deterministic, so that a crashing input replays
//! the same way on any machine (the keys are test-only and live in `fuzz/keys/`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callsign_common::AccessKey;
use callsign_server::auth::{IssuerConfig, TrustedIssuers};
use callsign_server::clock::{Clock, ManualClock};
use callsign_server::domain::ResourceId;
use callsign_server::keys::signing::{KeyRing, RetiredKey, SigningKeyPem};
use callsign_server::keys::{AccessKeys, ResourceKeys, SigningKey};
use chrono::{DateTime, Utc};
use std::sync::{Arc, OnceLock};

/// The time every target runs at: 2026-01-01T00:00:00Z.
pub const NOW_SECS: i64 = 1_767_225_600;

/// The resource the fixed keys belong to.
pub const RESOURCE_ID: &str = "6a1bd6b0-3bcd-4c63-9b84-cd0f4a34d3f8";

/// The issuer the bearer targets trust, with a tenant.
pub const ISSUER: &str =
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
/// The tenant [`ISSUER`] requires.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// A second trusted issuer, without a tenant.
pub const ISSUER_ANY_TENANT: &str = "https://sts.windows.net/any/";

/// [`NOW_SECS`] as a time.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW_SECS, 0).expect("in range")
}

/// A clock standing at [`now`].
pub fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(now()))
}

/// The two access keys of the fixed resource.
pub fn access_keys() -> AccessKeys {
    AccessKeys {
        primary: AccessKey::from_bytes(vec![1; 32]),
        secondary: AccessKey::from_bytes(vec![2; 32]),
    }
}

/// A key that is neither access key.
pub fn stranger_key() -> AccessKey {
    AccessKey::from_bytes(vec![3; 32])
}

macro_rules! pem_key {
    ($name:literal) => {
        SigningKey::from_pem(&SigningKeyPem {
            private_key: include_str!(concat!("../keys/", $name, ".key.pem")).to_owned(),
            certificate: include_str!(concat!("../keys/", $name, ".crt.pem")).to_owned(),
        })
        .expect(concat!("keys/", $name, " loads"))
    };
}

/// The fixed resource's keys: an RS256 signing key in force, ES256 and EdDSA keys retired an
/// hour ago (still published, so tokens they signed verify).
pub fn resource_keys() -> &'static ResourceKeys {
    static KEYS: OnceLock<ResourceKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let retired_at = now() - chrono::Duration::hours(1);
        ResourceKeys {
            resource_id: RESOURCE_ID.parse().expect("a GUID"),
            access: access_keys(),
            ring: KeyRing {
                current: Arc::new(pem_key!("ring-rs256")),
                retired: vec![
                    RetiredKey {
                        key: Arc::new(pem_key!("ring-es256")),
                        retired_at,
                    },
                    RetiredKey {
                        key: Arc::new(pem_key!("ring-eddsa")),
                        retired_at,
                    },
                ],
            },
        }
    })
}

/// The fixed resource id.
pub fn resource_id() -> ResourceId {
    resource_keys().resource_id
}

/// The signing keys of the ring: current first.
pub fn ring_keys() -> Vec<Arc<SigningKey>> {
    let ring = &resource_keys().ring;
    std::iter::once(ring.current.clone())
        .chain(ring.retired.iter().map(|r| r.key.clone()))
        .collect()
}

/// The trusted issuers' RSA key (not one of the ring's).
pub fn issuer_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| pem_key!("issuer-rs256"))
}

/// [`ISSUER`] (tenant [`TENANT`]) and [`ISSUER_ANY_TENANT`], both with [`issuer_key`]'s JWKS,
/// read from a file written into the temp dir now.
pub fn trusted_issuers() -> TrustedIssuers {
    let dir = scratch_dir("issuers");
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    let path = dir.join("issuer-jwks.json");
    let jwks = serde_json::json!({ "keys": [issuer_key().jwk()] });
    std::fs::write(&path, jwks.to_string()).expect("JWKS file");
    let config = |issuer: &str, tenant: Option<&str>| IssuerConfig {
        issuer: issuer.to_owned(),
        jwks_uri: None,
        jwks_file: Some(path.clone()),
        tenant_id: tenant.map(str::to_owned),
    };
    TrustedIssuers::new(
        &[
            config(ISSUER, Some(TENANT)),
            config(ISSUER_ANY_TENANT, None),
        ],
        clock(),
    )
    .expect("trusted issuers")
}

/// A directory of this process for `what`: under `CALLSIGN_FUZZ_TMP` (fuzz/run.sh points it at
/// tmpfs where there is one, and removes it afterwards), else under the temp dir.
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    let base = std::env::var_os("CALLSIGN_FUZZ_TMP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("callsign-fuzz-{what}-{}", std::process::id()))
}

/// A JWS `header.payload.signature` over the given header and payload bytes, signed by `key`.
pub fn sign_jws(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()));
    format!("{input}.{signature}")
}

/// A single-threaded runtime for the async parsers (none of them waits on the network here).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Reads structured inputs: NUL-separated fields (text seeds stay readable, and any byte string
/// is some input). Missing fields are empty.
pub struct Fields<'a>(std::slice::Split<'a, u8, fn(&u8) -> bool>);

impl<'a> Fields<'a> {
    /// The fields of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self(data.split((|b| *b == 0) as fn(&u8) -> bool))
    }

    /// The next field as bytes.
    pub fn bytes(&mut self) -> &'a [u8] {
        self.0.next().unwrap_or_default()
    }

    /// The next field as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// The next field's first byte, 0 when empty.
    pub fn byte(&mut self) -> u8 {
        self.bytes().first().copied().unwrap_or(0)
    }
}

/// Whether `CALLSIGN_FUZZ_DEBUG` is set: targets then tell what each input came to on stderr
/// (to check that seeds reach what they are meant to: `CALLSIGN_FUZZ_DEBUG=1 TARGET -runs=0 DIR`).
pub fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("CALLSIGN_FUZZ_DEBUG").is_some())
}
