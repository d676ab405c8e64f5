//! The issuer's signing keys, read from a JSON Web Key Set: each key with its id and the one
//! algorithm it signs with.

use aws_lc_rs::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519,
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

/// One published key, as far as verifying needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    /// RS256: the modulus and exponent, big-endian.
    Rs256 { n: Vec<u8>, e: Vec<u8> },
    /// ES256: the uncompressed P-256 point (`0x04 || x || y`).
    Es256 { point: Vec<u8> },
    /// EdDSA: the Ed25519 public key.
    EdDsa { x: Vec<u8> },
}

impl PublicKey {
    /// The JWS `alg` this key signs with.
    fn alg(&self) -> &'static str {
        match self {
            PublicKey::Rs256 { .. } => "RS256",
            PublicKey::Es256 { .. } => "ES256",
            PublicKey::EdDsa { .. } => "EdDSA",
        }
    }

    fn verify(&self, message: &[u8], signature_bytes: &[u8]) -> bool {
        match self {
            PublicKey::Rs256 { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature_bytes)
                .is_ok(),
            PublicKey::Es256 { point } => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature_bytes)
                .is_ok(),
            PublicKey::EdDsa { x } => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature_bytes)
                .is_ok(),
        }
    }
}

/// The keys of one issuer, by key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
        let key = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => PublicKey::Rs256 {
                n: bytes(&self.n)?,
                e: bytes(&self.e)?,
            },
            ("EC", Some("P-256")) => {
                let (x, y) = (bytes(&self.x)?, bytes(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                PublicKey::Es256 {
                    point: [&[0x04][..], &x, &y].concat(),
                }
            }
            ("OKP", Some("Ed25519")) => PublicKey::EdDsa { x: bytes(&self.x)? },
            _ => return None,
        };
        // A key that names another algorithm than its kind signs with is not used.
        match &self.alg {
            Some(alg) if alg != key.alg() => None,
            _ => Some(key),
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
        Some(alg == key.alg() && key.verify(message, signature))
    }
}
