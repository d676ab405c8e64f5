//! The signing keys of a trusted token issuer (a JSON Web Key Set), read from a file at start or
//! fetched from a URL and cached.
//!
//! A URL's set is fetched on first use and fetched again when a token names a `kid` the cache does
//! not hold (the issuer rotated its keys) — but at most once per [`KeySet::MIN_REFETCH`], so that
//! tokens with made-up `kid`s cannot make the server hammer the issuer.

use crate::clock::Clock;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Why a key set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file could not be read.
    #[error("reading the JWKS file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The document is not a JWKS.
    #[error("the JWKS is not valid JSON")]
    Parse(#[from] serde_json::Error),
    /// Fetching the URL failed.
    #[error("fetching the JWKS {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// One RSA public key of the set.
#[derive(Debug, Clone)]
pub struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaKey {
    /// Whether `signature` is a valid RS256 signature of `message` under this key.
    pub fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
        .is_ok()
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
}

/// Parses a JWKS document into its usable RSA signing keys by `kid`. Keys of other types, for
/// encryption, or without a `kid` are skipped: a token could not name them anyway.
pub fn parse_jwks(bytes: &[u8]) -> Result<HashMap<String, RsaKey>, JwksError> {
    let doc: JwksDocument = serde_json::from_slice(bytes)?;
    let mut keys = HashMap::new();
    for jwk in doc.keys {
        if jwk.kty != "RSA" || jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
            continue;
        };
        keys.insert(kid, RsaKey { n, e });
    }
    Ok(keys)
}

/// Where a key set comes from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A file, read once at start.
    File(PathBuf),
    /// A URL, fetched and cached.
    Url(String),
}

struct Cache {
    keys: HashMap<String, RsaKey>,
    fetched_at: Option<DateTime<Utc>>,
}

/// The keys of one issuer.
pub struct KeySet {
    source: JwksSource,
    cache: Mutex<Cache>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl KeySet {
    /// The shortest time between two fetches of a URL.
    pub const MIN_REFETCH: chrono::Duration = chrono::Duration::seconds(30);
    /// How long a fetched set is used before it is fetched again even without an unknown `kid`.
    pub const MAX_AGE: chrono::Duration = chrono::Duration::hours(24);

    /// A key set from a file (read now) or a URL (fetched on first use).
    pub fn new(source: JwksSource, clock: Arc<dyn Clock>) -> Result<Self, JwksError> {
        let keys = match &source {
            JwksSource::File(path) => read_file(path)?,
            JwksSource::Url(_) => HashMap::new(),
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| JwksError::Fetch {
                url: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            source,
            cache: Mutex::new(Cache {
                keys,
                fetched_at: None,
            }),
            http,
            clock,
        })
    }

    /// The key named `kid`, fetching the set (again) when the cache does not hold it and the
    /// rate limit allows. A failed fetch keeps the keys already cached.
    pub async fn key(&self, kid: &str) -> Option<RsaKey> {
        let JwksSource::Url(url) = &self.source else {
            return self.cache.lock().await.keys.get(kid).cloned();
        };
        // Holding the lock across the fetch makes concurrent misses wait for one fetch.
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        let age = cache.fetched_at.map(|at| now - at);
        let stale = age.is_none_or(|age| age >= Self::MAX_AGE);
        let known = cache.keys.contains_key(kid);
        let may_refetch = age.is_none_or(|age| age >= Self::MIN_REFETCH);
        if stale || (!known && may_refetch) {
            cache.fetched_at = Some(now);
            match self.fetch(url).await {
                Ok(keys) => cache.keys = keys,
                Err(e) => tracing::warn!(
                    error = %crate::error_chain::error_chain(&e),
                    "JWKS fetch failed; keeping cached keys"
                ),
            }
        }
        cache.keys.get(kid).cloned()
    }

    async fn fetch(&self, url: &str) -> Result<HashMap<String, RsaKey>, JwksError> {
        let failed = |reason: String| JwksError::Fetch {
            url: url.to_owned(),
            reason,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("status {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        parse_jwks(&bytes)
    }
}

fn read_file(path: &Path) -> Result<HashMap<String, RsaKey>, JwksError> {
    let bytes = std::fs::read(path).map_err(|source| JwksError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_jwks(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::signing::SigningKey;

    #[test]
    fn parses_rsa_signing_keys_and_verifies_with_them() {
        let (key, _) = SigningKey::generate().unwrap();
        let doc = serde_json::json!({"keys": [
            key.jwk(),
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        let rsa = &keys[key.kid()];
        let signature = key.sign(b"message");
        assert!(rsa.verify_rs256(b"message", &signature));
        assert!(!rsa.verify_rs256(b"other", &signature));
        assert!(parse_jwks(b"{}").is_err());
    }
}
