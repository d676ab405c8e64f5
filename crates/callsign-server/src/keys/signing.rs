//! Token-signing keys (RS256 by default; ES256 and EdDSA on request): generation, the self-signed
//! certificate that names them (`kid`, `x5t`), the key ring that keeps retired keys verifiable, and
//! the JWKS view of it.

use super::files::{create_private_dir, write_public, write_secret};
use super::KeyError;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long a retired key stays in the JWKS: longer than the longest token lifetime (24 h).
pub const RETIRED_KEY_RETENTION: chrono::Duration = chrono::Duration::hours(25);

/// The JWS algorithms tokens can be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048: what ACS uses and the SDKs are tested with.
    #[default]
    Rs256,
    /// ECDSA P-256 with SHA-256 (signature as fixed-width r || s, as JWS requires).
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    fn rcgen_alg(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            SigningAlg::Rs256 => &rcgen::PKCS_RSA_SHA256,
            SigningAlg::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            SigningAlg::EdDsa => &rcgen::PKCS_ED25519,
        }
    }
}

/// The private key of one algorithm, parsed once and reused for every signature.
enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl PrivateKey {
    fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        Ok(match alg {
            SigningAlg::Rs256 => PrivateKey::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto)?,
            ),
            SigningAlg::Es256 => PrivateKey::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Crypto)?,
            ),
            SigningAlg::EdDsa => {
                PrivateKey::Ed(Ed25519KeyPair::generate().map_err(|_| KeyError::Crypto)?)
            }
        })
    }

    /// Parses PKCS#8 DER of any of the three kinds.
    fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(key) = RsaKeyPair::from_pkcs8(der) {
            return Ok(PrivateKey::Rsa(key));
        }
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
        {
            return Ok(PrivateKey::Ec(key));
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(PrivateKey::Ed)
            .map_err(|_| KeyError::Crypto)
    }

    fn pkcs8(&self) -> Result<Vec<u8>, KeyError> {
        let der = match self {
            PrivateKey::Rsa(k) => k.as_der().map(|d| d.as_ref().to_vec()),
            PrivateKey::Ec(k) => k.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            PrivateKey::Ed(k) => k.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
        };
        der.map_err(|_| KeyError::Crypto)
    }

    fn alg(&self) -> SigningAlg {
        match self {
            PrivateKey::Rsa(_) => SigningAlg::Rs256,
            PrivateKey::Ec(_) => SigningAlg::Es256,
            PrivateKey::Ed(_) => SigningAlg::EdDsa,
        }
    }
}

/// One signing key with its certificate.
pub struct SigningKey {
    kid: String,
    x5t: String,
    /// The first segment of every JWT this key signs: the same for each, so encoded once.
    jwt_header: String,
    key_pair: PrivateKey,
    cert_der: Vec<u8>,
    pem: SigningKeyPem,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A key as stored: PKCS#8 private key PEM and certificate PEM.
#[derive(Clone)]
pub struct SigningKeyPem {
    /// PKCS#8 `PRIVATE KEY` PEM (secret).
    pub private_key: String,
    /// Self-signed certificate PEM.
    pub certificate: String,
}

/// The base64url JOSE header of a key's JWTs.
fn jwt_header(alg: SigningAlg, kid: &str, x5t: &str) -> String {
    let header = serde_json::json!({
        "alg": alg.jws_name(),
        "kid": kid,
        "x5t": x5t,
        "typ": "JWT",
    });
    URL_SAFE_NO_PAD.encode(header.to_string())
}

impl SigningKey {
    /// Generates a new RSA-2048 key and its self-signed certificate.
    pub fn generate() -> Result<(Self, SigningKeyPem), KeyError> {
        Self::generate_with(SigningAlg::Rs256)
    }

    /// Generates a new key for `alg` and its self-signed certificate.
    pub fn generate_with(alg: SigningAlg) -> Result<(Self, SigningKeyPem), KeyError> {
        let key_pair = PrivateKey::generate(alg)?;
        let pkcs8 = key_pair.pkcs8()?;
        let rc_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            alg.rcgen_alg(),
        )
        .map_err(|_| KeyError::Crypto)?;
        let params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|_| KeyError::Crypto)?;
        let mut params = params;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "callsign token signing");
        let cert = params.self_signed(&rc_key).map_err(|_| KeyError::Crypto)?;
        let pem = SigningKeyPem {
            private_key: rc_key.serialize_pem(),
            certificate: cert.pem(),
        };
        Ok((Self::new(key_pair, cert.der().to_vec(), pem.clone()), pem))
    }

    /// Loads a stored key.
    pub fn from_pem(pem: &SigningKeyPem) -> Result<Self, KeyError> {
        let der = pem_body(&pem.private_key, "PRIVATE KEY").ok_or(KeyError::Crypto)?;
        let key_pair = PrivateKey::from_pkcs8(&der)?;
        let cert_der = pem_body(&pem.certificate, "CERTIFICATE").ok_or(KeyError::Crypto)?;
        Ok(Self::new(key_pair, cert_der, pem.clone()))
    }

    /// The key as stored (its private half is a secret: for `callsign export --include-keys`).
    pub fn pem(&self) -> &SigningKeyPem {
        &self.pem
    }

    fn new(key_pair: PrivateKey, cert_der: Vec<u8>, pem: SigningKeyPem) -> Self {
        let thumbprint =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der);
        let kid: String = thumbprint
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let x5t = URL_SAFE_NO_PAD.encode(thumbprint.as_ref());
        let jwt_header = jwt_header(key_pair.alg(), &kid, &x5t);
        Self {
            kid,
            x5t,
            jwt_header,
            key_pair,
            cert_der,
            pem,
        }
    }

    /// The key id: the uppercase hex SHA-1 thumbprint of the certificate, as ACS uses.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The base64url SHA-1 thumbprint of the certificate.
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// The base64url JOSE header (`alg`, `kid`, `x5t`, `typ`) of the JWTs this key signs.
    pub fn jwt_header(&self) -> &str {
        &self.jwt_header
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SigningAlg {
        self.key_pair.alg()
    }

    /// The JWS signature of `message` (RS256: RSASSA-PKCS1-v1_5 with SHA-256).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.key_pair {
            PrivateKey::Rsa(key) => {
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .expect("RSA signing with a valid key does not fail");
                signature
            }
            PrivateKey::Ec(key) => key
                .sign(&rng, message)
                .expect("ECDSA signing with a valid key does not fail")
                .as_ref()
                .to_vec(),
            PrivateKey::Ed(key) => key.sign(message).as_ref().to_vec(),
        }
    }

    /// Checks a signature made by this key.
    pub fn verify(&self, message: &[u8], signature_bytes: &[u8]) -> bool {
        let (alg, public): (&dyn signature::VerificationAlgorithm, &[u8]) = match &self.key_pair {
            PrivateKey::Rsa(k) => (
                &signature::RSA_PKCS1_2048_8192_SHA256,
                k.public_key().as_ref(),
            ),
            PrivateKey::Ec(k) => (&signature::ECDSA_P256_SHA256_FIXED, k.public_key().as_ref()),
            PrivateKey::Ed(k) => (&signature::ED25519, k.public_key().as_ref()),
        };
        signature::UnparsedPublicKey::new(alg, public)
            .verify(message, signature_bytes)
            .is_ok()
    }

    /// The public key as a JSON Web Key.
    pub fn jwk(&self) -> serde_json::Value {
        let mut jwk = match &self.key_pair {
            PrivateKey::Rsa(k) => {
                let public = k.public_key();
                serde_json::json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            PrivateKey::Ec(k) => {
                // Uncompressed point: 0x04 || x || y.
                let point = k.public_key().as_ref();
                serde_json::json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
            PrivateKey::Ed(k) => serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(k.public_key().as_ref()),
            }),
        };
        let fields = jwk.as_object_mut().expect("an object");
        fields.insert("use".into(), "sig".into());
        fields.insert("alg".into(), self.alg().jws_name().into());
        fields.insert("kid".into(), self.kid.clone().into());
        fields.insert("x5t".into(), self.x5t.clone().into());
        fields.insert(
            "x5c".into(),
            serde_json::json!([STANDARD.encode(&self.cert_der)]),
        );
        jwk
    }
}

fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let b64: String = pem[start..stop].split_whitespace().collect();
    STANDARD.decode(b64).ok()
}

/// A key the ring no longer signs with, kept so that tokens it signed still verify.
#[derive(Debug, Clone)]
pub struct RetiredKey {
    /// The key.
    pub key: Arc<SigningKey>,
    /// When it stopped signing.
    pub retired_at: DateTime<Utc>,
}

/// The current signing key and the retired keys still published.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// The key new tokens are signed with.
    pub current: Arc<SigningKey>,
    /// Keys retired less than [`RETIRED_KEY_RETENTION`] ago.
    pub retired: Vec<RetiredKey>,
}

impl KeyRing {
    /// The key with this `kid`, current or retired.
    pub fn find(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        std::iter::once(&self.current)
            .chain(self.retired.iter().map(|r| &r.key))
            .find(|k| k.kid() == kid)
    }

    /// The JWKS document (`{"keys":[...]}`), current key first.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = std::iter::once(&self.current)
            .chain(self.retired.iter().map(|r| &r.key))
            .map(|k| k.jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[derive(Serialize, Deserialize)]
struct RingFile {
    current: String,
    #[serde(default)]
    retired: Vec<RetiredEntry>,
}

#[derive(Serialize, Deserialize)]
struct RetiredEntry {
    kid: String,
    retired_at: i64,
}

/// The on-disk ring: `DIR/ring.json` plus `DIR/<kid>.key.pem` (0600) and `DIR/<kid>.crt.pem`.
pub struct KeyRingDir {
    dir: PathBuf,
}

impl KeyRingDir {
    /// The ring stored in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn ring_path(&self) -> PathBuf {
        self.dir.join("ring.json")
    }

    /// Whether a ring has been created here.
    pub fn exists(&self) -> bool {
        self.ring_path().exists()
    }

    /// Creates the ring with one fresh key.
    pub fn create(&self) -> Result<KeyRing, KeyError> {
        create_private_dir(&self.dir).map_err(|e| KeyError::io("creating", &self.dir, e))?;
        let current = self.generate_key(SigningAlg::Rs256)?;
        self.write_ring(&current, &[])?;
        Ok(KeyRing {
            current: Arc::new(current),
            retired: Vec::new(),
        })
    }

    /// Creates the ring from existing keys (an import).
    pub fn create_from(
        &self,
        current: &SigningKeyPem,
        retired: &[(SigningKeyPem, DateTime<Utc>)],
    ) -> Result<KeyRing, KeyError> {
        create_private_dir(&self.dir).map_err(|e| KeyError::io("creating", &self.dir, e))?;
        let current = SigningKey::from_pem(current)?;
        self.store_key(&current)?;
        let mut kept = Vec::new();
        for (pem, retired_at) in retired {
            let key = SigningKey::from_pem(pem)?;
            self.store_key(&key)?;
            kept.push(RetiredKey {
                key: Arc::new(key),
                retired_at: *retired_at,
            });
        }
        self.write_ring(&current, &kept)?;
        Ok(KeyRing {
            current: Arc::new(current),
            retired: kept,
        })
    }

    fn read_ring(&self) -> Result<RingFile, KeyError> {
        let path = self.ring_path();
        let text = std::fs::read_to_string(&path).map_err(|e| KeyError::io("reading", &path, e))?;
        serde_json::from_str(&text).map_err(|_| KeyError::Corrupt(path))
    }

    /// Private key files in the directory that the ring does not list: nothing signs or
    /// verifies with them (a ring restored from an older backup, say).
    pub fn unlisted_key_files(&self) -> Result<Vec<PathBuf>, KeyError> {
        let file = self.read_ring()?;
        let listed: Vec<&str> = std::iter::once(file.current.as_str())
            .chain(file.retired.iter().map(|r| r.kid.as_str()))
            .collect();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| KeyError::io("reading", &self.dir, e))?;
        let mut unlisted: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".key.pem")
                    .is_some_and(|kid| !listed.contains(&kid))
            })
            .map(|entry| entry.path())
            .collect();
        unlisted.sort();
        Ok(unlisted)
    }

    /// Reads the ring; retired keys past their retention are left out.
    pub fn load(&self, now: DateTime<Utc>) -> Result<KeyRing, KeyError> {
        let path = self.ring_path();
        let file = self.read_ring()?;
        let current = Arc::new(self.load_key(&file.current)?);
        let mut retired = Vec::new();
        for entry in file.retired {
            let retired_at = DateTime::from_timestamp(entry.retired_at, 0)
                .ok_or(KeyError::Corrupt(path.clone()))?;
            if now - retired_at < RETIRED_KEY_RETENTION {
                retired.push(RetiredKey {
                    key: Arc::new(self.load_key(&entry.kid)?),
                    retired_at,
                });
            }
        }
        Ok(KeyRing { current, retired })
    }

    /// Makes a fresh key current and retires the old one; returns the new ring.
    pub fn rotate(&self, now: DateTime<Utc>) -> Result<KeyRing, KeyError> {
        let old = self.load(now)?;
        let alg = old.current.alg();
        self.rotate_from(old, alg, now)
    }

    /// Makes a fresh `alg` key current unless the current key already uses `alg`.
    pub fn ensure_alg(&self, alg: SigningAlg, now: DateTime<Utc>) -> Result<KeyRing, KeyError> {
        let old = self.load(now)?;
        if old.current.alg() == alg {
            return Ok(old);
        }
        self.rotate_from(old, alg, now)
    }

    fn rotate_from(
        &self,
        old: KeyRing,
        alg: SigningAlg,
        now: DateTime<Utc>,
    ) -> Result<KeyRing, KeyError> {
        let new_key = self.generate_key(alg)?;
        let mut retired = vec![RetiredKey {
            key: old.current,
            retired_at: now,
        }];
        retired.extend(old.retired);
        self.write_ring(&new_key, &retired)?;
        self.remove_unlisted(&new_key, &retired);
        Ok(KeyRing {
            current: Arc::new(new_key),
            retired,
        })
    }

    fn generate_key(&self, alg: SigningAlg) -> Result<SigningKey, KeyError> {
        let (key, _) = SigningKey::generate_with(alg)?;
        self.store_key(&key)?;
        Ok(key)
    }

    /// Writes a key's files: the private key 0600, the certificate 0644.
    fn store_key(&self, key: &SigningKey) -> Result<(), KeyError> {
        let key_path = self.dir.join(format!("{}.key.pem", key.kid()));
        write_secret(&key_path, key.pem().private_key.as_bytes())
            .map_err(|e| KeyError::io("writing", &key_path, e))?;
        let crt_path = self.dir.join(format!("{}.crt.pem", key.kid()));
        write_public(&crt_path, key.pem().certificate.as_bytes())
            .map_err(|e| KeyError::io("writing", &crt_path, e))
    }

    fn load_key(&self, kid: &str) -> Result<SigningKey, KeyError> {
        if !kid.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(KeyError::Corrupt(self.ring_path()));
        }
        let read = |suffix: &str| {
            let path = self.dir.join(format!("{kid}.{suffix}"));
            std::fs::read_to_string(&path).map_err(|e| KeyError::io("reading", &path, e))
        };
        super::check_owner_only(&self.dir.join(format!("{kid}.key.pem")))?;
        let private_key = read("key.pem")?;
        let certificate = read("crt.pem")?;
        SigningKey::from_pem(&SigningKeyPem {
            private_key,
            certificate,
        })
        .map_err(|_| KeyError::Corrupt(self.dir.join(format!("{kid}.key.pem"))))
    }

    fn write_ring(&self, current: &SigningKey, retired: &[RetiredKey]) -> Result<(), KeyError> {
        let file = RingFile {
            current: current.kid().to_owned(),
            retired: retired
                .iter()
                .map(|r| RetiredEntry {
                    kid: r.key.kid().to_owned(),
                    retired_at: r.retired_at.timestamp(),
                })
                .collect(),
        };
        let path = self.ring_path();
        write_public(
            &path,
            &serde_json::to_vec_pretty(&file).expect("serializable"),
        )
        .map_err(|e| KeyError::io("writing", &path, e))
    }

    /// Deletes key files of keys that left the ring (best effort: a leftover file is harmless).
    fn remove_unlisted(&self, current: &SigningKey, retired: &[RetiredKey]) {
        let keep: Vec<&str> = std::iter::once(current.kid())
            .chain(retired.iter().map(|r| r.key.kid()))
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(kid) = name
                .strip_suffix(".key.pem")
                .or(name.strip_suffix(".crt.pem"))
            {
                if !keep.contains(&kid) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_key_signs_verifies_and_names_itself() {
        let (key, pem) = SigningKey::generate().unwrap();
        assert_eq!(key.kid().len(), 40);
        assert!(key
            .kid()
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        let sig = key.sign(b"hello");
        assert_eq!(sig.len(), 256);
        assert!(key.verify(b"hello", &sig));
        assert!(!key.verify(b"hellO", &sig));
        let loaded = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(loaded.kid(), key.kid());
        assert!(loaded.verify(b"hello", &sig));
        let jwk = key.jwk();
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["x5t"], key.x5t());
    }

    #[test]
    fn es256_and_eddsa_keys_sign_verify_reload_and_publish_their_jwk() {
        for (alg, kty) in [(SigningAlg::Es256, "EC"), (SigningAlg::EdDsa, "OKP")] {
            let (key, pem) = SigningKey::generate_with(alg).unwrap();
            assert_eq!(key.alg(), alg);
            let sig = key.sign(b"hello");
            assert!(key.verify(b"hello", &sig));
            assert!(!key.verify(b"hellO", &sig));
            let loaded = SigningKey::from_pem(&pem).unwrap();
            assert_eq!(loaded.alg(), alg);
            assert_eq!(loaded.kid(), key.kid());
            assert!(loaded.verify(b"hello", &sig));
            let jwk = key.jwk();
            assert_eq!(jwk["kty"], kty);
            assert_eq!(jwk["alg"], alg.jws_name());
        }
    }

    #[test]
    fn ensure_alg_rotates_only_when_the_algorithm_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ring_dir = KeyRingDir::new(dir.path().join("signing"));
        let now = Utc::now();
        let first = ring_dir.create().unwrap();
        assert_eq!(first.current.alg(), SigningAlg::Rs256);
        let same = ring_dir.ensure_alg(SigningAlg::Rs256, now).unwrap();
        assert_eq!(same.current.kid(), first.current.kid());
        let ec = ring_dir.ensure_alg(SigningAlg::Es256, now).unwrap();
        assert_eq!(ec.current.alg(), SigningAlg::Es256);
        assert!(
            ec.find(first.current.kid()).is_some(),
            "the RSA key stays published"
        );
        let reloaded = ring_dir.load(now).unwrap();
        assert_eq!(reloaded.current.alg(), SigningAlg::Es256);
        assert_eq!(
            ring_dir.rotate(now).unwrap().current.alg(),
            SigningAlg::Es256
        );
    }

    #[test]
    fn rotation_keeps_old_key_for_retention_then_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let ring_dir = KeyRingDir::new(dir.path().join("signing"));
        let t0 = Utc::now();
        let first = ring_dir.create().unwrap();
        let old_kid = first.current.kid().to_owned();
        let key_file = ring_dir.path().join(format!("{old_kid}.key.pem"));
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let rotated = ring_dir.rotate(t0).unwrap();
        assert_ne!(rotated.current.kid(), old_kid);
        let later = ring_dir.load(t0 + chrono::Duration::hours(24)).unwrap();
        assert!(
            later.find(&old_kid).is_some(),
            "old key still verifies after 24 h"
        );
        assert_eq!(later.jwks()["keys"].as_array().unwrap().len(), 2);
        let much_later = ring_dir.load(t0 + chrono::Duration::hours(26)).unwrap();
        assert!(much_later.find(&old_kid).is_none());
    }
}
