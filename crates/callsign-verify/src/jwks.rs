//! The issuer's signing keys, read from a JSON Web Key Set: each key with its id and the one
//! algorithm it signs with.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ParsedPublicKey, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED, ED25519,
    RSA_PKCS1_2048_8192_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;

/// A JWKS document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not a JWKS (`{"keys": [...]}`).
    #[error("not a JSON Web Key Set: {0}")]
    Malformed(String),
}

/// One published key, parsed once (not per token), with the JWS algorithm it signs with.
struct PublicKey {
    alg: &'static str,
    key: ParsedPublicKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("alg", &self.alg).finish()
    }
}

/// The keys of one issuer, by key id.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, PublicKey>,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn bytes(field: &Option<String>) -> Option<Vec<u8>> {
    field
        .as_deref()
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
}

impl Jwk {
    /// The key, when it is one of the three kinds callsign signs with; others are skipped.
    fn public_key(&self) -> Option<PublicKey> {
        let (alg, key) = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => {
                let (n, e) = (bytes(&self.n)?, bytes(&self.e)?);
                let der = RsaPublicKeyComponents { n: &n, e: &e }.as_der().ok()?;
                let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.as_ref()).ok()?;
                ("RS256", key)
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (bytes(&self.x)?, bytes(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = [&[0x04][..], &x, &y].concat();
                (
                    "ES256",
                    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).ok()?,
                )
            }
            ("OKP", Some("Ed25519")) => (
                "EdDSA",
                ParsedPublicKey::new(&ED25519, bytes(&self.x)?).ok()?,
            ),
            _ => return None,
        };
        // A key that names another algorithm than its kind signs with is not used.
        match &self.alg {
            Some(named) if named != alg => None,
            _ => Some(PublicKey { alg, key }),
        }
    }
}

impl KeySet {
    /// Reads a JWKS document. Keys without a `kid`, of another kind, or naming an algorithm
    /// their kind does not sign with are left out.
    pub fn from_jwks(document: &[u8]) -> Result<Self, JwksError> {
        let document: Document =
            serde_json::from_slice(document).map_err(|e| JwksError::Malformed(e.to_string()))?;
        let keys = document
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.kid.clone()?, jwk.public_key()?)))
            .collect();
        Ok(Self { keys })
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether it holds the key `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Whether `signature` over `message` verifies with the key `kid` and the header's `alg` is
    /// that key's own algorithm; `None` when the key is unknown.
    pub(crate) fn verify(
        &self,
        kid: &str,
        alg: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        let key = self.keys.get(kid)?;
        Some(alg == key.alg && key.key.verify_sig(message, signature).is_ok())
    }
}
