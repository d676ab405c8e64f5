//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a write is on disk
//! before it is acknowledged.

use super::{IdentityRecord, Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Identities in a SQLite database file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
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
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on the blocking pool, keeping the async runtime free.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(unavailable)
    }
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
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(custom_id) = &record.custom_id {
                let existing = tx
                    .query_row(
                        &format!(
                            "SELECT {COLUMNS} FROM identities \
                             WHERE custom_id = ?1 AND deleted_at_us IS NULL"
                        ),
                        [custom_id],
                        read_record,
                    )
                    .optional()?;
                if let Some(existing) = existing {
                    return Ok(existing);
                }
            }
            tx.execute(
                "INSERT INTO identities (id, custom_id, created_at_us) VALUES (?1, ?2, ?3)",
                params![record.id, record.custom_id, record.created_at_us],
            )?;
            tx.commit()?;
            Ok(record)
        })
        .await
    }

    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError> {
        self.with_conn(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE id = ?1"))?
                .query_row([id], read_record)
                .optional()
        })
        .await
    }

    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "UPDATE identities SET last_token_issued_at_us = max(coalesce(last_token_issued_at_us, 0), ?2) \
                 WHERE id = ?1",
            )?
            .execute(params![id, at_us])
            .map(|_| ())
        })
        .await
    }

    async fn revoke_tokens(&self, id: String, before_us: i64) -> Result<bool, StoreError> {
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "UPDATE identities SET revoked_before_us = \
                 max(coalesce(revoked_before_us, 0), ?2, coalesce(last_token_issued_at_us, 0)) \
                 WHERE id = ?1 AND deleted_at_us IS NULL",
            )?
            .execute(params![id, before_us])
            .map(|n| n == 1)
        })
        .await
    }

    async fn delete_identity(&self, id: String, at_us: i64) -> Result<bool, StoreError> {
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "UPDATE identities SET deleted_at_us = ?2 WHERE id = ?1 AND deleted_at_us IS NULL",
            )?
            .execute(params![id, at_us])
            .map(|n| n == 1)
        })
        .await
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
}
