//! The resource's two access keys (primary and secondary), kept in `access-keys.json`.

use super::files::write_secret;
use super::KeyError;
use callsign_common::AccessKey;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which of the two access keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The key connection strings show.
    Primary,
    /// The key that keeps working while the primary is regenerated.
    Secondary,
}

/// The pair of access keys; requests signed with either are accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKeys {
    /// Primary key.
    pub primary: AccessKey,
    /// Secondary key.
    pub secondary: AccessKey,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKeys(<redacted>)")
    }
}

#[derive(Serialize, Deserialize)]
struct AccessKeysFile {
    primary: String,
    secondary: String,
}

/// The well-known access key of development instances (`callsign serve --dev`), published so
/// that test suites can hard-code their connection string, as Azurite's well-known account key
/// is. Not a secret: never use it for anything reachable from another machine.
pub const DEV_ACCESS_KEY: &str =
    "QBuLZH+Q1IfqHJvQiK57dWHoL4aWPLNRIH2UdY2a/Cl5wKmZcBq5zTarIMGw4CdvE+qCIBVL2U1Id9TtzwsDww==";

/// [`DEV_ACCESS_KEY`] as a key.
pub fn dev_access_key() -> AccessKey {
    AccessKey::from_base64(DEV_ACCESS_KEY).expect("the development key is valid base64")
}

/// A new random 32-byte key.
pub fn random_key() -> AccessKey {
    let mut bytes = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness is available");
    AccessKey::from_bytes(bytes)
}

impl AccessKeys {
    /// Two fresh random keys, or `seed` as the primary.
    pub fn generate(seed: Option<AccessKey>) -> Self {
        Self {
            primary: seed.unwrap_or_else(random_key),
            secondary: random_key(),
        }
    }

    /// Both keys, primary first.
    pub fn both(&self) -> [&AccessKey; 2] {
        [&self.primary, &self.secondary]
    }

    /// Replaces one key with a fresh random one; the other is untouched.
    pub fn regenerate(&mut self, which: KeyKind) {
        match which {
            KeyKind::Primary => self.primary = random_key(),
            KeyKind::Secondary => self.secondary = random_key(),
        }
    }

    /// Reads the key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        super::check_owner_only(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::io("reading", path, e))?;
        let file: AccessKeysFile =
            serde_json::from_str(&text).map_err(|_| KeyError::Corrupt(path.to_owned()))?;
        let decode =
            |k: &str| AccessKey::from_base64(k).map_err(|_| KeyError::Corrupt(path.to_owned()));
        Ok(Self {
            primary: decode(&file.primary)?,
            secondary: decode(&file.secondary)?,
        })
    }

    /// Writes the key file (mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let file = AccessKeysFile {
            primary: self.primary.to_base64(),
            secondary: self.secondary.to_base64(),
        };
        let json = serde_json::to_vec_pretty(&file).expect("serializable");
        write_secret(path, &json).map_err(|e| KeyError::io("writing", path, e))
    }
}
