//! Everything a deployment stores — identities, assignments, keys and throttling counts — behind
//! one [`Backend`], so that the domain and the HTTP layer never know which database they talk to.
//!
//! The backend is chosen in exactly one place, [`open`]. Each backend lives in its own module
//! folder with one versioned migration list and one connection model:
//!
//! - [`sqlite`]: a data dir — one SQLite file (one group-commit writer thread, a pool of readers)
//!   and the key files ([`crate::keys::DataDir`]);
//! - [`postgres`]: a cluster's database — one connection pool; keys sealed with the master key;
//! - [`memory`]: this process's memory — nothing on disk, gone with the process.
//!
//! Adding a stored field: add a migration step to each backend's `MIGRATIONS`, the field to the
//! record type here, and read/write it in each backend's module. Handlers are untouched.

pub mod assignments;
pub mod audit;
pub mod health;
pub mod identities;
pub mod keys;
pub mod memory;
pub mod postgres;
pub mod sqlite;
pub mod stats;
pub mod throttle;
pub mod transfer;
pub mod webhooks;

pub use assignments::{AssignmentStore, EntraAssignment, TeamsExtensionAssignment};
pub use audit::{AuditRecord, AuditStore, LogPosition};
pub use health::HealthStore;
pub use identities::{IdentityRecord, IdentityStore, TokenState};
pub use keys::{KeyStore, KeyVersion};
pub use memory::MemoryStorage;
pub use stats::{PoolStatus, StoreStats};
pub use throttle::{LocalWindows, ThrottleStore};
pub use transfer::{Imported, Snapshot, TransferStore};
pub use webhooks::{WebhookClaim, WebhookStore};

use crate::keys::MasterKey;
use std::path::PathBuf;
use std::sync::Arc;

/// A store operation that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the operation; the caller may retry.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// An admin command was pointed at storage that was never initialised.
    #[error("{0} holds no callsign data yet; start `callsign serve` with it once")]
    NotInitialised(String),
    /// An import would give a custom id to a second live identity.
    #[error("the custom id {0:?} already belongs to another identity of this store")]
    CustomIdTaken(String),
    /// The storage was written by a newer callsign.
    #[error(
        "{what} has schema version {found}, newer than this callsign knows ({known}); run the \
         newer callsign, or restore a backup made with this one"
    )]
    TooNew {
        /// The database.
        what: String,
        /// Its schema version.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// Another server holds the storage (a data dir serves one process at a time).
    #[error("{dir} is in use by another callsign process{}", pid_suffix(.pid))]
    InUse {
        /// The data dir.
        dir: String,
        /// The process holding it, when it said.
        pid: Option<u32>,
    },
}

/// Where a deployment keeps its state.
#[derive(Clone)]
pub enum StorageConfig {
    /// A data dir on this machine: SQLite and key files.
    DataDir(PathBuf),
    /// A PostgreSQL database shared by the nodes of a cluster.
    Postgres(PostgresConfig),
    /// This process's memory (`--in-memory`): nothing is written anywhere.
    Memory(MemoryStorage),
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DataDir(dir) => f.debug_tuple("DataDir").field(dir).finish(),
            Self::Postgres(pg) => pg.fmt(f),
            Self::Memory(memory) => memory.fmt(f),
        }
    }
}

/// Where a cluster keeps its state: PostgreSQL, with secrets sealed by the master key.
#[derive(Clone)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Seals the private keys stored in the database (`CALLSIGN_MASTER_KEY`).
    pub master_key: Arc<MasterKey>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.write_str("PostgresConfig(<redacted>)")
    }
}

fn pid_suffix(pid: &Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

/// What opening may do to storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `callsign serve`: create what a first start needs (a PostgreSQL database must exist
    /// already) and claim the storage for this process: a data dir serves one process at a
    /// time, the nodes of a cluster share their database.
    Serve,
    /// Create what is missing without claiming anything (tests opening one store twice).
    Create,
    /// Admin commands: the storage must have been initialised by a server, which may be running.
    Existing,
}

/// One deployment's storage: identities, assignments and keys, moving them in and out, and the
/// throttling windows' counts, the audit log and the webhooks' progress. Every write but the counts' is durable before
/// its future resolves.
pub trait Backend:
    IdentityStore
    + AssignmentStore
    + KeyStore
    + TransferStore
    + ThrottleStore
    + HealthStore
    + AuditStore
    + WebhookStore
    + StoreStats
{
}

impl<
        T: IdentityStore
            + AssignmentStore
            + KeyStore
            + TransferStore
            + ThrottleStore
            + HealthStore
            + AuditStore
            + WebhookStore
            + StoreStats
            + ?Sized,
    > Backend for T
{
}

/// Opens the storage `config` names, bringing its schema up to date. The one place a backend
/// is chosen.
pub async fn open(config: &StorageConfig, mode: OpenMode) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(match config {
        StorageConfig::DataDir(dir) => Arc::new(sqlite::SqliteBackend::open(dir, mode)?),
        StorageConfig::Postgres(pg) => Arc::new(postgres::PostgresBackend::connect(pg).await?),
        StorageConfig::Memory(memory) => Arc::new(memory::MemoryBackend::open(memory)),
    })
}
