//! The data-dir backend: one SQLite file in WAL mode with `synchronous=FULL` (a write is on disk
//! before it is acknowledged) for identities and assignments, and the key files of the data dir.
//!
//! One connection model for every table: writes go to one writer thread that commits them in
//! batches (group commit: one transaction and one fsync for every write that arrived while the
//! previous batch was syncing), each write in a savepoint of its own so that a failed one leaves
//! no half. Reads use a pool of at most [`MAX_READERS`] read-only connections, which WAL lets run
//! beside the writer, on the blocking pool.

mod assignments;
mod audit;
mod backup;
mod identities;
mod keys;
mod token_cache;
mod transfer;
mod webhooks;
mod writer;

use super::{HealthStore, LocalWindows, OpenMode, StoreError, ThrottleStore};
use crate::keys::{files, DataDir};
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use token_cache::TokenCache;
use tokio::sync::oneshot;
use writer::{Job, PendingStamps};

pub use backup::{backup, BackupError};
pub use writer::STAMP_FLUSH;

/// Most read connections open at once. Each holds three files (the database, its WAL and its
/// shared memory), and the files a server keeps back from its connections
/// ([`crate::limits::RESERVED_FILES`]) must cover them; more would not read faster anyway.
pub const MAX_READERS: usize = 16;

/// Schema steps, applied in order, each once; the index + 1 is `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE identities (
        id TEXT PRIMARY KEY NOT NULL,
        custom_id TEXT,
        created_at_us INTEGER NOT NULL,
        last_token_issued_at_us INTEGER,
        revoked_before_us INTEGER,
        deleted_at_us INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX identities_live_custom_id
        ON identities (custom_id) WHERE custom_id IS NOT NULL AND deleted_at_us IS NULL;
"#,
    // Data dirs written before assignments were versioned already have these tables.
    r#"
    CREATE TABLE IF NOT EXISTS teams_extension_assignments (
        tenant_id TEXT NOT NULL,
        object_id TEXT NOT NULL,
        principal_type TEXT NOT NULL,
        client_ids TEXT,
        PRIMARY KEY (tenant_id, object_id)
    ) STRICT;
    CREATE TABLE IF NOT EXISTS entra_assignments (
        object_id TEXT PRIMARY KEY NOT NULL,
        tenant_id TEXT NOT NULL,
        principal_type TEXT NOT NULL,
        client_ids TEXT NOT NULL
    ) STRICT;
"#,
    // One row the readiness check rewrites: a write is the only sure sign writes succeed.
    r#"
    CREATE TABLE readiness (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        checked_at_us INTEGER NOT NULL
    ) STRICT;
"#,
    // The audit trail: AUTOINCREMENT so that an id is never reused, even after retention
    // deleted the newest events.
    r#"
    CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_us INTEGER NOT NULL,
        type TEXT NOT NULL,
        subject TEXT,
        event TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_events_time ON audit_events (time_us);
    CREATE INDEX audit_events_subject ON audit_events (subject, type);
"#,
    // The newest event the retention deleted: a change feed reader behind it has missed events.
    r#"
    CREATE TABLE audit_forgotten (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        id INTEGER NOT NULL
    ) STRICT;
    INSERT INTO audit_forgotten (one, id) VALUES (1, 0);
"#,
    // The revoked and deleted identities, for the change feed's snapshot.
    r#"
    CREATE INDEX identities_stamped ON identities (id)
        WHERE revoked_before_us IS NOT NULL OR deleted_at_us IS NOT NULL;
"#,
    // How far each webhook is delivered, and who delivers it.
    r#"
    CREATE TABLE webhook_deliveries (
        webhook TEXT PRIMARY KEY NOT NULL,
        delivered_id INTEGER,
        holder TEXT NOT NULL,
        leased_until_us INTEGER NOT NULL
    ) STRICT;
"#,
    // The audit trail's index by subject goes: its entries land on a random page per event, which
    // was 40 % of the pages a batch of revokes wrote (13 of 32.5 per commit of 8, BENCHMARKS.md).
    // Who did what to one identity is an operator's question, answered by a scan of the table.
    r#"
    DROP INDEX audit_events_subject;
"#,
];

/// Below this much free space on the data dir's file system, the store says it is not ready:
/// SQLite can still rewrite pages it has, so a small write may pass while a create fails.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// A data dir's storage; clones share the writer and the readers.
#[derive(Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
    data_dir: DataDir,
}

struct Inner {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read connection that may be open.
    reading: tokio::sync::Semaphore,
    stamps: Arc<PendingStamps>,
    /// The identities' token states, kept exact by the writes that change them: only in a
    /// serving process, which has claimed the data dir, so that every write to it is this
    /// backend's (two handles opened by tests would each miss the other's writes).
    tokens: Option<Arc<TokenCache>>,
    /// Writes per group commit, recorded by the writer (`callsign_sqlite_commit_batch_size`).
    batches: prometheus_client::metrics::histogram::Histogram,
    /// Throttling counts: in memory, since a data dir serves one process at a time.
    windows: LocalWindows,
    /// Held (locked) for the life of a serving process; the lock goes with the process.
    _claim: Option<File>,
}

impl Drop for Inner {
    /// Lets the writer finish its queue and write the pending token stamps before the store goes.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// WAL pages after which a commit copies them into the database file (SQLite's default is 1,000).
/// A checkpoint writes each page once however many commits changed it, so a longer WAL writes
/// the hot pages (the newest events, a busy identity's row) fewer times: with a checkpoint per
/// ~40 MB instead of ~4 MB, revokes on one core went from ~12,000/s to ~13,500/s (BENCHMARKS.md).
/// The WAL file then stays at up to ~40 MB.
const WAL_CHECKPOINT_PAGES: u32 = 10_000;

impl SqliteBackend {
    /// Opens the data dir at `root` and its database, bringing the schema up to date. With
    /// [`OpenMode::Serve`] or [`OpenMode::Create`] a missing data dir is created (`Serve` also
    /// locks it for this process); with [`OpenMode::Existing`] it is an error.
    pub fn open(root: &Path, mode: OpenMode) -> Result<Self, StoreError> {
        let data_dir = DataDir::new(root);
        match mode {
            OpenMode::Serve | OpenMode::Create => files::create_private_dir(root).map_err(|e| {
                StoreError::Unavailable(format!("creating the data dir {}: {e}", root.display()))
            })?,
            OpenMode::Existing if !data_dir.is_initialised() => {
                return Err(StoreError::NotInitialised(format!(
                    "the data dir {}",
                    root.display()
                )))
            }
            OpenMode::Existing => {}
        }
        let claim = match mode {
            OpenMode::Serve => Some(claim(root)?),
            OpenMode::Create | OpenMode::Existing => None,
        };
        let path = data_dir.database_path();
        let conn = Connection::open(&path).map_err(unavailable)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; \
             PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES};"
        ))
        .map_err(unavailable)?;
        migrate(&conn, &path)?;
        let (jobs, queue) = mpsc::channel();
        let stamps = Arc::new(PendingStamps::default());
        let writer_stamps = stamps.clone();
        let batches = crate::metrics::batch_size_histogram();
        let writer_batches = batches.clone();
        let writer = std::thread::Builder::new()
            .name("callsign-sqlite-writer".into())
            .spawn(move || writer::run(conn, queue, writer_stamps, writer_batches))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                jobs: Some(jobs),
                writer: Some(writer),
                readers: Mutex::new(Vec::new()),
                reading: tokio::sync::Semaphore::new(MAX_READERS),
                stamps,
                tokens: claim
                    .is_some()
                    .then(|| Arc::new(TokenCache::new(token_cache::DEFAULT_CAPACITY))),
                batches,
                windows: LocalWindows::default(),
                _claim: claim,
            }),
            data_dir,
        })
    }

    /// Runs `f` in the next batch's transaction (in a savepoint of its own) on the writer thread,
    /// and waits until that batch has committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.write_then(f, |_| ()).await
    }

    /// [`Self::write`], calling `committed` with the token cache once the batch has committed and
    /// before the caller is answered: a write that changes token states removes them there, so
    /// that nobody reads them from the cache once the change has been acknowledged.
    async fn write_then<T, F>(
        &self,
        f: F,
        committed: impl FnOnce(&TokenCache) + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let tokens = self.inner.tokens.clone();
        let job: Job = Box::new(move |tx| {
            let result = writer::in_savepoint(tx, f);
            Box::new(move || {
                if let Some(tokens) = &tokens {
                    committed(tokens);
                }
                drop(reply.send(result))
            })
        });
        self.inner
            .jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Unavailable("the writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the write was not committed".into()))?
            .map_err(unavailable)
    }

    /// Runs `f` on a read connection on the blocking pool, keeping the async runtime free.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _reader = self
            .inner
            .reading
            .acquire()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.take_reader()?;
            let result = f(&conn);
            inner.put_reader(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(unavailable)
    }
}

/// Ready when the data dir's file system has room and a write commits.
#[async_trait::async_trait]
impl HealthStore for SqliteBackend {
    async fn check_writable(&self) -> Result<(), StoreError> {
        let root = self.data_dir.root().to_owned();
        let free = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&root))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map(|stats| stats.f_bavail.saturating_mul(stats.f_frsize))
            .map_err(|e| StoreError::Unavailable(format!("reading the free space: {e}")))?;
        if free < MIN_FREE_BYTES {
            return Err(StoreError::Unavailable(format!(
                "disk full: {free} bytes free on the file system of {}",
                self.data_dir.root().display()
            )));
        }
        let now_us = chrono::Utc::now().timestamp_micros();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO readiness (id, checked_at_us) VALUES (1, ?1)",
                [now_us],
            )
        })
        .await
        .map(drop)
    }
}

/// Exact: the data dir's one serving process holds every count.
#[async_trait::async_trait]
impl ThrottleStore for SqliteBackend {
    async fn count_request(&self, group: &str, window_start: i64) -> Result<u64, StoreError> {
        Ok(self.inner.windows.count(group, window_start))
    }
}

impl Inner {
    fn take_reader(&self) -> rusqlite::Result<Connection> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(conn)
            }
        }
    }

    fn put_reader(&self, conn: Connection) {
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

/// Takes the data dir's lock file (`callsign.lock`, holding the owner's pid) for this process,
/// or says which process holds it. Admin commands never take it: they change key files
/// atomically, and the server picks the change up.
fn claim(root: &Path) -> Result<File, StoreError> {
    let path = root.join("callsign.lock");
    let failed =
        |e: std::io::Error| StoreError::Unavailable(format!("locking {}: {e}", path.display()));
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(failed)?;
    match lock_patiently(&file) {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(StoreError::InUse {
                dir: root.display().to_string(),
                pid: pid.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
    }
    file.set_len(0).map_err(failed)?;
    file.rewind().map_err(failed)?;
    write!(file, "{}", std::process::id()).map_err(failed)?;
    Ok(file)
}

/// Takes the lock, waiting out a [`serving_pid`] probe (which holds a shared lock for a moment)
/// but not a server: a lock still held after 200 ms is another process's.
fn lock_patiently(file: &File) -> Result<(), std::fs::TryLockError> {
    const ATTEMPTS: u32 = 10;
    for _ in 1..ATTEMPTS {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other,
        }
    }
    file.try_lock()
}

/// The pid of the server serving the data dir at `root` now, or `None` when no server runs on
/// it (the lock of `callsign.lock` is free: a server that died, even by `kill -9`, released it).
pub fn serving_pid(root: &Path) -> std::io::Result<Option<u32>> {
    let mut file = match File::open(root.join("callsign.lock")) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        // Free: nobody serves it (dropping the file releases the probe's lock).
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            file.read_to_string(&mut pid)?;
            Ok(Some(pid.trim().parse().unwrap_or(0)))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            what: path.display().to_string(),
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .map_err(unavailable)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl super::StoreStats for SqliteBackend {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    /// A scan of the table on a read connection (callers cache it).
    async fn count_identities(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT count(*) FROM identities WHERE deleted_at_us IS NULL",
                [],
                |row| row.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| n.max(0) as u64)
    }

    fn group_commit_batches(&self) -> Option<prometheus_client::metrics::histogram::Histogram> {
        Some(self.inner.batches.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_sees_the_server_and_does_not_stop_one_starting() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(serving_pid(dir.path()).unwrap(), None, "no lock file");
        let held = claim(dir.path()).unwrap();
        assert_eq!(serving_pid(dir.path()).unwrap(), Some(std::process::id()));
        drop(held);
        assert_eq!(serving_pid(dir.path()).unwrap(), None, "released");

        // A probe holding its shared lock while a server claims: the claim waits it out.
        let probe = File::open(dir.path().join("callsign.lock")).unwrap();
        probe.try_lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(probe);
        });
        claim(dir.path()).unwrap();
        release.join().unwrap();
    }

    /// However many reads run at once, no more than [`MAX_READERS`] connections (three files
    /// each) are opened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_share_a_bounded_pool() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("data"), OpenMode::Create).unwrap();
        let reads: Vec<_> = (0..4 * MAX_READERS)
            .map(|_| {
                let backend = backend.clone();
                tokio::spawn(async move {
                    backend
                        .read(|conn| {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                        })
                        .await
                })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap().unwrap(), 1);
        }
        let pooled = backend.inner.readers.lock().unwrap().len();
        assert!(
            (1..=MAX_READERS).contains(&pooled),
            "{pooled} read connections"
        );
    }
}
