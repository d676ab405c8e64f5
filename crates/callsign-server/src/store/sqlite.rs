//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a write is on disk
//! before it is acknowledged.
//!
//! Writes go to one writer thread that commits them in batches (group commit: one transaction and
//! one fsync for every write that arrived while the previous batch was syncing). Reads use a pool
//! of their own connections, which WAL lets run beside the writer, on the blocking pool.

mod writer;

use super::{IdentityRecord, Store, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use writer::{Job, PendingStamps};

/// Identities in a SQLite database file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    stamps: Arc<PendingStamps>,
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

const MIGRATIONS: &[&str] = &[r#"
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
"#];

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
        )
        .map_err(unavailable)?;
        migrate(&conn)?;
        let (jobs, queue) = mpsc::channel();
        let stamps = Arc::new(PendingStamps::default());
        let writer_stamps = stamps.clone();
        let writer = std::thread::Builder::new()
            .name("callsign-sqlite-writer".into())
            .spawn(move || writer::run(conn, queue, writer_stamps))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                jobs: Some(jobs),
                writer: Some(writer),
                readers: Mutex::new(Vec::new()),
                stamps,
            }),
        })
    }

    /// Queues a write for the writer thread and waits until its batch has committed.
    async fn write<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<rusqlite::Result<T>>) -> Job,
    ) -> Result<T, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.inner
            .jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job(reply)).ok())
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

/// The record with its token-issue time brought up to date with the stamps not yet written.
fn with_pending_stamp(stamps: &PendingStamps, mut record: IdentityRecord) -> IdentityRecord {
    if let Some(pending) = stamps.get(&record.id) {
        let stored = record.last_token_issued_at_us.unwrap_or(i64::MIN);
        record.last_token_issued_at_us = Some(stored.max(pending));
    }
    record
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .map_err(unavailable)?;
    }
    Ok(())
}

const COLUMNS: &str =
    "id, custom_id, created_at_us, last_token_issued_at_us, revoked_before_us, deleted_at_us";

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityRecord> {
    Ok(IdentityRecord {
        id: row.get(0)?,
        custom_id: row.get(1)?,
        created_at_us: row.get(2)?,
        last_token_issued_at_us: row.get(3)?,
        revoked_before_us: row.get(4)?,
        deleted_at_us: row.get(5)?,
    })
}

impl Store for SqliteStore {
    async fn create_identity(&self, record: IdentityRecord) -> Result<IdentityRecord, StoreError> {
        let record = self.write(|reply| Job::Create(record, reply)).await?;
        Ok(with_pending_stamp(&self.inner.stamps, record))
    }

    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError> {
        let stamps = self.inner.stamps.clone();
        self.read(move |conn| {
            let record = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE id = ?1"))?
                .query_row([&id], read_record)
                .optional()?;
            Ok(record.map(|r| with_pending_stamp(&stamps, r)))
        })
        .await
    }

    /// Kept in memory and written within [`writer::STAMP_FLUSH`]; reads see it at once.
    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError> {
        self.inner.stamps.record(id, at_us);
        Ok(())
    }

    async fn revoke_tokens(&self, id: String, before_us: i64) -> Result<bool, StoreError> {
        // A revoke covers every issue recorded so far, written or still pending (a node whose clock
        // runs ahead may have stamped a token later than `before_us`).
        let before = self
            .inner
            .stamps
            .get(&id)
            .map_or(before_us, |pending| pending.max(before_us));
        self.write(|reply| Job::Revoke(id, before, reply)).await
    }

    async fn delete_identity(&self, id: String, at_us: i64) -> Result<bool, StoreError> {
        self.write(|reply| Job::Delete(id, at_us, reply)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, custom_id: Option<&str>) -> IdentityRecord {
        IdentityRecord {
            id: id.into(),
            custom_id: custom_id.map(Into::into),
            created_at_us: 1,
            last_token_issued_at_us: None,
            revoked_before_us: None,
            deleted_at_us: None,
        }
    }

    #[tokio::test]
    async fn lifecycle_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SqliteStore::open(&path).unwrap();
        store.create_identity(record("a", None)).await.unwrap();
        assert!(store.revoke_tokens("a".into(), 10).await.unwrap());
        assert!(store.revoke_tokens("a".into(), 5).await.unwrap());
        store.record_token_issued("a".into(), 20).await.unwrap();
        assert!(!store.revoke_tokens("missing".into(), 10).await.unwrap());
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        let a = store.get_identity("a".into()).await.unwrap().unwrap();
        assert_eq!(a.revoked_before_us, Some(10), "revocation never moves back");
        assert_eq!(a.last_token_issued_at_us, Some(20));
        assert!(store.delete_identity("a".into(), 30).await.unwrap());
        assert!(!store.delete_identity("a".into(), 31).await.unwrap());
        assert!(!store.revoke_tokens("a".into(), 40).await.unwrap());
        let a = store.get_identity("a".into()).await.unwrap().unwrap();
        assert_eq!(a.deleted_at_us, Some(30));
    }

    #[tokio::test]
    async fn custom_id_is_idempotent_while_live() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let first = store
            .create_identity(record("a", Some("bob")))
            .await
            .unwrap();
        let again = store
            .create_identity(record("b", Some("bob")))
            .await
            .unwrap();
        assert_eq!(again.id, first.id);
        store.delete_identity("a".into(), 5).await.unwrap();
        let fresh = store
            .create_identity(record("c", Some("bob")))
            .await
            .unwrap();
        assert_eq!(fresh.id, "c");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_committed_and_visible_to_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SqliteStore::open(&path).unwrap();
        let creates = (0..200).map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.create_identity(record(&format!("u{i}"), None)).await })
        });
        for create in creates.collect::<Vec<_>>() {
            create.await.unwrap().unwrap();
        }
        let revokes = (0..200).map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.revoke_tokens(format!("u{i}"), 7).await })
        });
        for revoke in revokes.collect::<Vec<_>>() {
            assert!(revoke.await.unwrap().unwrap());
        }
        // Acknowledged means committed: a connection of its own sees every write at once.
        let other = Connection::open(&path).unwrap();
        let revoked: i64 = other
            .query_row(
                "SELECT count(*) FROM identities WHERE revoked_before_us = 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(revoked, 200);
    }

    #[tokio::test]
    async fn token_stamps_are_visible_at_once_and_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SqliteStore::open(&path).unwrap();
        store.create_identity(record("a", None)).await.unwrap();
        store.record_token_issued("a".into(), 42).await.unwrap();
        let a = store.get_identity("a".into()).await.unwrap().unwrap();
        assert_eq!(a.last_token_issued_at_us, Some(42));
        tokio::time::sleep(writer::STAMP_FLUSH * 3).await;
        let other = Connection::open(&path).unwrap();
        let stored: Option<i64> = other
            .query_row(
                "SELECT last_token_issued_at_us FROM identities WHERE id = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, Some(42));
    }
}
