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
pub use signing::{KeyRing, KeyRingDir, SigningAlg, SigningKey, SigningKeyPem};
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
    #[error("{action} {path}")]
    Io {
        /// What was being done: `reading`, `writing`, `creating`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file exists but does not hold what it should.
    #[error("{0}: the file is corrupt; restore it from a backup of this data dir")]
    Corrupt(PathBuf),
    /// A key file can be read by other users.
    #[error(
        "{path} is readable by group or others (mode {mode:o}); keys must be owner-only: \
         `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The data dir holds part of a resource: starting would quietly become another resource.
    #[error(
        "the data dir {dir} is incomplete: {} missing ({}); restore from a backup of this data \
         dir (new keys or a new resource id would invalidate every stored user, issued token \
         and client key), or start with an empty --data directory",
        .missing.join(", "),
        .reason
    )]
    Incomplete {
        /// The data dir.
        dir: PathBuf,
        /// The files missing, relative to the data dir.
        missing: Vec<String>,
        /// What is there instead.
        reason: &'static str,
    },
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
    /// Imported identities belong to another resource than the storage's.
    #[error(
        "the storage holds resource {stored}, the file resource {given}: identities cannot move \
         between resources; import into an empty data dir or database"
    )]
    OtherResource {
        /// The storage's resource.
        stored: String,
        /// The file's.
        given: String,
    },
    /// The database holding the keys failed or holds no resource.
    #[error("key storage: {0}")]
    Database(String),
    /// Sealed key material could not be opened (wrong master key).
    #[error(transparent)]
    Sealed(#[from] SealError),
}

/// Refuses a key file that group or others can read.
pub(crate) fn check_owner_only(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        // Not there: reading it says so, with the path.
        Err(_) => return Ok(()),
    };
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

impl KeyError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
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

/// A resource's secret keys as they move between stores (`callsign export --include-keys`),
/// and the private keys of what a store holds now ([`ResourceKeys::transfer`]).
#[derive(Clone)]
pub struct TransferredKeys {
    /// The two access keys.
    pub access: AccessKeys,
    /// The signing key in use.
    pub current: SigningKeyPem,
    /// Retired signing keys still published, with when they were retired.
    pub retired: Vec<(SigningKeyPem, DateTime<Utc>)>,
}

impl std::fmt::Debug for TransferredKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferredKeys(<secret>)")
    }
}

impl ResourceKeys {
    /// The secret keys, to move them to another store.
    pub fn transfer(&self) -> TransferredKeys {
        TransferredKeys {
            access: self.access.clone(),
            current: self.ring.current.pem().clone(),
            retired: self
                .ring
                .retired
                .iter()
                .map(|r| (r.key.pem().clone(), r.retired_at))
                .collect(),
        }
    }
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

    /// The files that together are a resource's keys, relative to the data dir.
    const KEY_FILES: [&'static str; 3] = ["resource-id", "access-keys.json", "signing/ring.json"];

    /// Creates the keys of a new data dir (none of its key files there, and `holds_data`
    /// false: the database has no identities or assignments) or checks that an existing one is
    /// complete, then loads the keys. `seed` becomes the primary key of a new data dir; for an
    /// existing one it must equal the stored primary key. A data dir with some of the files, or
    /// data but no keys, is refused: recreating what is missing would make it another resource.
    pub fn init(
        &self,
        seed: Option<AccessKey>,
        now: DateTime<Utc>,
        holds_data: bool,
    ) -> Result<ResourceKeys, KeyError> {
        files::create_private_dir(&self.root)
            .map_err(|e| KeyError::io("creating", &self.root, e))?;
        let missing: Vec<String> = Self::KEY_FILES
            .iter()
            .filter(|name| !self.root.join(name).exists())
            .map(|name| name.to_string())
            .collect();
        let incomplete = |reason| KeyError::Incomplete {
            dir: self.root.clone(),
            missing: missing.clone(),
            reason,
        };
        match missing.len() {
            0 => self.check_seed(seed)?,
            _ if missing.len() < Self::KEY_FILES.len() => {
                return Err(incomplete("the other key files are there"))
            }
            _ if holds_data => return Err(incomplete("the database holds identities")),
            _ => self.create(seed)?,
        }
        self.report_unlisted_keys();
        self.load(now)
    }

    /// Writes a new resource: its id, access keys (`seed` as the primary) and a signing key.
    fn create(&self, seed: Option<AccessKey>) -> Result<(), KeyError> {
        self.write_resource_id(ResourceId::random())?;
        AccessKeys::generate(seed).save(&self.access_keys_path())?;
        self.ring_dir().create()?;
        Ok(())
    }

    fn write_resource_id(&self, id: ResourceId) -> Result<(), KeyError> {
        let path = self.resource_id_path();
        files::write_public(&path, id.to_string().as_bytes())
            .map_err(|e| KeyError::io("writing", &path, e))
    }

    /// Makes a data dir without keys that of `resource_id` (with `keys`, or fresh ones); one
    /// that already is is left alone, one of another resource refused.
    pub fn adopt(
        &self,
        resource_id: ResourceId,
        keys: Option<TransferredKeys>,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        if self.is_initialised() {
            let stored = self.load(now)?.resource_id;
            return match stored == resource_id {
                true => Ok(()),
                false => Err(KeyError::OtherResource {
                    stored: stored.to_string(),
                    given: resource_id.to_string(),
                }),
            };
        }
        files::create_private_dir(&self.root)
            .map_err(|e| KeyError::io("creating", &self.root, e))?;
        match keys {
            Some(keys) => {
                keys.access.save(&self.access_keys_path())?;
                self.ring_dir().create_from(&keys.current, &keys.retired)?;
            }
            None => {
                AccessKeys::generate(None).save(&self.access_keys_path())?;
                self.ring_dir().create()?;
            }
        }
        // Last: a data dir counts as initialised once its resource id is there.
        self.write_resource_id(resource_id)
    }

    fn check_seed(&self, seed: Option<AccessKey>) -> Result<(), KeyError> {
        let stored = AccessKeys::load(&self.access_keys_path())?;
        if seed.is_some_and(|seed| seed != stored.primary) {
            return Err(KeyError::SeedMismatch(self.root.clone()));
        }
        Ok(())
    }

    /// Logs private key files the ring does not list (nothing uses them).
    fn report_unlisted_keys(&self) {
        match self.ring_dir().unlisted_key_files() {
            Ok(files) => {
                for file in files {
                    tracing::warn!(
                        file = %file.display(),
                        "a signing key file is not in signing/ring.json; it is not used"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %crate::error_chain::error_chain(&e), "listing the signing keys failed")
            }
        }
    }

    /// Loads the keys of an initialised data dir.
    pub fn load(&self, now: DateTime<Utc>) -> Result<ResourceKeys, KeyError> {
        let id_path = self.resource_id_path();
        let text =
            std::fs::read_to_string(&id_path).map_err(|e| KeyError::io("reading", &id_path, e))?;
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
        let first = data.init(None, now, false).unwrap();
        let second = data.init(None, now, false).unwrap();
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
        let keys = data.init(Some(seed.clone()), Utc::now(), false).unwrap();
        assert_eq!(keys.access.primary, seed);
        assert!(data.init(Some(seed), Utc::now(), false).is_ok());
        let other = AccessKey::from_bytes(vec![8; 32]);
        let err = data
            .init(Some(other.clone()), Utc::now(), false)
            .unwrap_err();
        assert!(matches!(err, KeyError::SeedMismatch(_)));
        assert!(!err.to_string().contains(&other.to_base64()));
    }

    #[test]
    fn regenerate_changes_only_one_key_and_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let now = Utc::now();
        let before = data.init(None, now, false).unwrap();
        let seen = data.fingerprint();
        let after = data.regenerate_access_key(KeyKind::Secondary).unwrap();
        assert_eq!(after.primary, before.access.primary);
        assert_ne!(after.secondary, before.access.secondary);
        assert_ne!(data.fingerprint(), seen);
        assert_eq!(data.load(now).unwrap().access.secondary, after.secondary);
    }

    fn incomplete_after_removing(name: &str) -> KeyError {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        data.init(None, Utc::now(), false).unwrap();
        std::fs::remove_file(dir.path().join(name)).unwrap();
        data.init(None, Utc::now(), false).unwrap_err()
    }

    #[test]
    fn a_missing_key_file_is_named_not_recreated() {
        for name in DataDir::KEY_FILES {
            let err = incomplete_after_removing(name);
            assert!(
                matches!(&err, KeyError::Incomplete { missing, .. } if missing == &[name]),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("restore from a backup"), "{err}");
        }
    }

    #[test]
    fn keys_gone_from_a_dir_with_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let err = data.init(None, Utc::now(), true).unwrap_err();
        assert!(
            matches!(&err, KeyError::Incomplete { missing, .. } if missing.len() == 3),
            "{err}"
        );
        assert!(err.to_string().contains("the database holds identities"));
        assert!(!dir.path().join("resource-id").exists(), "nothing created");
    }

    #[test]
    fn signing_key_files_the_ring_does_not_list_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        data.init(None, Utc::now(), false).unwrap();
        assert!(data.ring_dir().unlisted_key_files().unwrap().is_empty());
        let stray = dir.path().join("signing/ABCDEF.key.pem");
        std::fs::write(&stray, "x").unwrap();
        assert_eq!(data.ring_dir().unlisted_key_files().unwrap(), vec![stray]);
    }

    #[test]
    fn key_files_readable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let keys = data.init(None, Utc::now(), false).unwrap();
        let signing = dir
            .path()
            .join(format!("signing/{}.key.pem", keys.ring.current.kid()));
        for path in [dir.path().join("access-keys.json"), signing] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = data.load(Utc::now()).unwrap_err();
            assert!(
                matches!(&err, KeyError::Exposed { path: p, mode: 0o640 } if p == &path),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 600"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(data.load(Utc::now()).is_ok());
    }

    #[test]
    fn an_existing_data_dir_keeps_its_permissions_and_a_new_one_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        DataDir::new(&shared).init(None, Utc::now(), false).unwrap();
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o1777);

        let fresh = dir.path().join("a/b/fresh");
        DataDir::new(&fresh).init(None, Utc::now(), false).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_garbage_key_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        data.init(None, Utc::now(), false).unwrap();
        let path = dir.path().join("access-keys.json");
        files::write_secret(&path, b"not json").unwrap();
        let err = data.load(Utc::now()).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
