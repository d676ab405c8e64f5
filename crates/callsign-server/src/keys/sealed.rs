//! Encryption at rest of key material kept in a shared database: AES-256-GCM (aws-lc-rs) under the
//! operator's master key (`CALLSIGN_MASTER_KEY`), so a database dump alone never yields a key.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Format tag of a sealed value, so that the layout can change later without guessing.
const FORMAT_V1: u8 = 1;

/// The master key: 32 bytes, given base64-encoded.
pub struct MasterKey(LessSafeKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Why a master key or a sealed value could not be used. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The master key is not base64 of exactly 32 bytes.
    #[error("CALLSIGN_MASTER_KEY must be the base64 encoding of 32 random bytes")]
    BadMasterKey,
    /// The value was sealed under another master key, for another purpose, or is damaged.
    #[error("a stored key cannot be decrypted: wrong CALLSIGN_MASTER_KEY, or damaged data")]
    Open,
}

impl MasterKey {
    /// Parses the base64 form of a 32-byte key.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::BadMasterKey)?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    /// Encrypts `plain`, binding it to `purpose` (e.g. `access/primary`): a value sealed for one
    /// purpose does not open as another, so rows cannot be swapped around undetected.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness is available");
        let mut buffer = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buffer,
            )
            .expect("AES-GCM sealing of a small buffer does not fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buffer.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        out
    }

    /// Decrypts a value sealed by [`MasterKey::seal`] for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (&format, rest) = sealed.split_first().ok_or(SealError::Open)?;
        if format != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buffer)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = MasterKey::from_bytes(&[1; 32]).unwrap();
        let sealed = key.seal("access/primary", b"secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open("access/primary", &sealed).unwrap(), b"secret");
        assert_eq!(
            key.open("access/secondary", &sealed),
            Err(SealError::Open),
            "bound to its purpose"
        );
        let other = MasterKey::from_bytes(&[2; 32]).unwrap();
        assert_eq!(other.open("access/primary", &sealed), Err(SealError::Open));
        assert_ne!(sealed, key.seal("access/primary", b"secret"), "fresh nonce");
    }

    #[test]
    fn bad_master_keys_are_refused() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 32])).is_ok());
    }
}
