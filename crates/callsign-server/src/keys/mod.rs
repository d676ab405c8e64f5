//! Key management: the resource id, the access keys and the signing-key ring; their layout in a
//! data dir ([`DataDir`]); and the live copy the server reads on every request ([`LiveKeys`]),
//! kept in step with the backend's [`crate::store::KeyStore`] by a [`KeyWatcher`].

pub mod access;
pub mod files;
pub mod sealed;
pub mod signing;
mod watch;

pub use access::{AccessKeys, KeyKind};
pub use sealed::{MasterKey, SealError};
pub use signing::{KeyRing, KeyRingDir, SigningAlg, SigningKey};
pub use watch::KeyWatcher;

use crate::domain::ids::ResourceId;
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Why keys could not be created or read. Messages name files, never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file exists but does not hold what it should.
    #[error("{0}: the file is corrupt")]
    Corrupt(PathBuf),
    /// The crypto library refused an operation.
    #[error("a cryptographic operation failed")]
    Crypto,
    /// `CALLSIGN_ACCESS_KEY` disagrees with the data dir.
    #[error(
        "the data dir {0} already holds a different primary access key than CALLSIGN_ACCESS_KEY; \
         unset CALLSIGN_ACCESS_KEY, or point --data at a new directory"
    )]
    SeedMismatch(PathBuf),
    /// `CALLSIGN_ACCESS_KEY` disagrees with the database.
    #[error(
        "the database already holds a different primary access key than CALLSIGN_ACCESS_KEY; \
         unset CALLSIGN_ACCESS_KEY (the database is authoritative)"
    )]
    SeedMismatchDatabase,
    /// The database holding the keys failed or holds no resource.
    #[error("key storage: {0}")]
    Database(String),
    /// Sealed key material could not be opened (wrong master key).
    #[error(transparent)]
    Sealed(#[from] SealError),
}

impl KeyError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Everything that identifies and secures one resource.
#[derive(Debug, Clone)]
pub struct ResourceKeys {
    /// The resource's GUID, part of every identity id.
    pub resource_id: ResourceId,
    /// The two access keys.
    pub access: AccessKeys,
    /// The signing keys.
    pub ring: KeyRing,
}

/// The data directory: `resource-id`, `access-keys.json` (0600), `signing/`, the database, `tls/`.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data dir at `root` (nothing is created until [`DataDir::init`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.root.join("callsign.db")
    }

    /// Whether a server has initialised this data dir (its resource id exists).
    pub fn is_initialised(&self) -> bool {
        self.resource_id_path().exists()
    }

    /// Where the development TLS CA and server certificate live.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// The file holding the endpoint the server last listened on.
    pub fn endpoint_path(&self) -> PathBuf {
        self.root.join("endpoint")
    }

    fn resource_id_path(&self) -> PathBuf {
        self.root.join("resource-id")
    }

    fn access_keys_path(&self) -> PathBuf {
        self.root.join("access-keys.json")
    }

    fn ring_dir(&self) -> KeyRingDir {
        KeyRingDir::new(self.root.join("signing"))
    }

    /// Creates whatever is missing (a first start) and loads the keys. `seed` becomes the primary
    /// key of a new data dir; for an existing one it must equal the stored primary key.
    pub fn init(
        &self,
        seed: Option<AccessKey>,
        now: DateTime<Utc>,
    ) -> Result<ResourceKeys, KeyError> {
        files::create_private_dir(&self.root).map_err(|e| KeyError::io(&self.root, e))?;
        let id_path = self.resource_id_path();
        if !id_path.exists() {
            files::write_public(&id_path, ResourceId::random().to_string().as_bytes())
                .map_err(|e| KeyError::io(&id_path, e))?;
        }
        let keys_path = self.access_keys_path();
        if keys_path.exists() {
            let stored = AccessKeys::load(&keys_path)?;
            if seed.is_some_and(|seed| seed != stored.primary) {
                return Err(KeyError::SeedMismatch(self.root.clone()));
            }
        } else {
            AccessKeys::generate(seed).save(&keys_path)?;
        }
        let ring_dir = self.ring_dir();
        if !ring_dir.exists() {
            ring_dir.create()?;
        }
        self.load(now)
    }

    /// Loads the keys of an initialised data dir.
    pub fn load(&self, now: DateTime<Utc>) -> Result<ResourceKeys, KeyError> {
        let id_path = self.resource_id_path();
        let text = std::fs::read_to_string(&id_path).map_err(|e| KeyError::io(&id_path, e))?;
        let resource_id = text
            .trim()
            .parse()
            .map_err(|_| KeyError::Corrupt(id_path.clone()))?;
        Ok(ResourceKeys {
            resource_id,
            access: AccessKeys::load(&self.access_keys_path())?,
            ring: self.ring_dir().load(now)?,
        })
    }

    /// Replaces one access key; the other keeps working.
    pub fn regenerate_access_key(&self, which: KeyKind) -> Result<AccessKeys, KeyError> {
        let path = self.access_keys_path();
        let mut keys = AccessKeys::load(&path)?;
        keys.regenerate(which);
        keys.save(&path)?;
        Ok(keys)
    }

    /// Makes a new `alg` signing key current unless the current key already uses `alg` (the old
    /// key stays published for 25 hours), and returns the keys.
    pub fn ensure_signing_alg(
        &self,
        alg: SigningAlg,
        now: DateTime<Utc>,
    ) -> Result<ResourceKeys, KeyError> {
        self.ring_dir().ensure_alg(alg, now)?;
        self.load(now)
    }

    /// Makes a new signing key current; the old one stays published for 25 hours.
    pub fn rotate_signing_key(&self, now: DateTime<Utc>) -> Result<KeyRing, KeyError> {
        self.ring_dir().rotate(now)
    }

    /// A digest of the key files' modification times, to notice changes made by the CLI.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mtime = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        mtime(self.access_keys_path()).hash(&mut hasher);
        mtime(self.ring_dir().path().join("ring.json")).hash(&mut hasher);
        hasher.finish()
    }
}

/// The keys in force, shared by every request and replaced whole when the stored keys change.
pub struct LiveKeys {
    current: RwLock<Arc<ResourceKeys>>,
}

impl LiveKeys {
    /// Live keys starting from `keys`.
    pub fn new(keys: ResourceKeys) -> Self {
        Self {
            current: RwLock::new(Arc::new(keys)),
        }
    }

    /// Puts `keys` in force for every request from now on.
    pub fn replace(&self, keys: ResourceKeys) {
        *self.current.write().expect("key lock poisoned") = Arc::new(keys);
    }

    /// The keys in force now.
    pub fn get(&self) -> Arc<ResourceKeys> {
        self.current.read().expect("key lock poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_creates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("d"));
        let now = Utc::now();
        let first = data.init(None, now).unwrap();
        let second = data.init(None, now).unwrap();
        assert_eq!(first.resource_id, second.resource_id);
        assert_eq!(first.access, second.access);
        assert_eq!(first.ring.current.kid(), second.ring.current.kid());
        let mode = std::fs::metadata(dir.path().join("d/access-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn seed_is_used_for_new_dirs_and_checked_for_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let seed = AccessKey::from_bytes(vec![7; 32]);
        let keys = data.init(Some(seed.clone()), Utc::now()).unwrap();
        assert_eq!(keys.access.primary, seed);
        assert!(data.init(Some(seed), Utc::now()).is_ok());
        let other = AccessKey::from_bytes(vec![8; 32]);
        let err = data.init(Some(other.clone()), Utc::now()).unwrap_err();
        assert!(matches!(err, KeyError::SeedMismatch(_)));
        assert!(!err.to_string().contains(&other.to_base64()));
    }

    #[test]
    fn regenerate_changes_only_one_key_and_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let now = Utc::now();
        let before = data.init(None, now).unwrap();
        let seen = data.fingerprint();
        let after = data.regenerate_access_key(KeyKind::Secondary).unwrap();
        assert_eq!(after.primary, before.access.primary);
        assert_ne!(after.secondary, before.access.secondary);
        assert_ne!(data.fingerprint(), seen);
        assert_eq!(data.load(now).unwrap().access.secondary, after.secondary);
    }
}
