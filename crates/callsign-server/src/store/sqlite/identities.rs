//! Identities in the data dir's SQLite file.

use super::writer::PendingStamps;
use super::SqliteBackend;
use crate::store::{IdentityRecord, IdentityStore, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

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

/// The record with its token-issue time brought up to date with the stamps not yet written.
fn with_pending_stamp(stamps: &PendingStamps, mut record: IdentityRecord) -> IdentityRecord {
    if let Some(pending) = stamps.get(&record.id) {
        let stored = record.last_token_issued_at_us.unwrap_or(i64::MIN);
        record.last_token_issued_at_us = Some(stored.max(pending));
    }
    record
}

/// Inserts `record`, unless a live identity already has its custom id: then that one.
fn create(conn: &Connection, record: IdentityRecord) -> rusqlite::Result<IdentityRecord> {
    if let Some(custom_id) = &record.custom_id {
        let existing = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM identities WHERE custom_id = ?1 AND deleted_at_us IS NULL"
            ))?
            .query_row([custom_id], read_record)
            .optional()?;
        if let Some(existing) = existing {
            return Ok(existing);
        }
    }
    conn.prepare_cached(
        "INSERT INTO identities (id, custom_id, created_at_us) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![record.id, record.custom_id, record.created_at_us])?;
    Ok(record)
}

/// Runs one prepared change and tells whether it changed exactly one row.
fn changed_one(conn: &Connection, sql: &str, id: &str, at: i64) -> rusqlite::Result<bool> {
    Ok(conn.prepare_cached(sql)?.execute(params![id, at])? == 1)
}

#[async_trait::async_trait]
impl IdentityStore for SqliteBackend {
    async fn create_identity(&self, record: IdentityRecord) -> Result<IdentityRecord, StoreError> {
        let record = self.write(move |conn| create(conn, record)).await?;
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

    /// Kept in memory and written within [`super::STAMP_FLUSH`]; reads see it at once.
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
        self.write(move |conn| {
            changed_one(
                conn,
                "UPDATE identities SET revoked_before_us = \
                 max(coalesce(revoked_before_us, 0), ?2, coalesce(last_token_issued_at_us, 0)) \
                 WHERE id = ?1 AND deleted_at_us IS NULL",
                &id,
                before,
            )
        })
        .await
    }

    async fn delete_identity(&self, id: String, at_us: i64) -> Result<bool, StoreError> {
        self.write(move |conn| {
            changed_one(
                conn,
                "UPDATE identities SET deleted_at_us = ?2 WHERE id = ?1 AND deleted_at_us IS NULL",
                &id,
                at_us,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpenMode;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_committed_and_visible_to_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteBackend::open(dir.path(), OpenMode::Create).unwrap();
        let creates = (0..200).map(|i| {
            let store = store.clone();
            let record = IdentityRecord::new(format!("u{i}"), None, 1);
            tokio::spawn(async move { store.create_identity(record).await })
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
        let other = Connection::open(dir.path().join("callsign.db")).unwrap();
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
        let store = SqliteBackend::open(dir.path(), OpenMode::Create).unwrap();
        store
            .create_identity(IdentityRecord::new("a".into(), None, 1))
            .await
            .unwrap();
        store.record_token_issued("a".into(), 42).await.unwrap();
        let a = store.get_identity("a".into()).await.unwrap().unwrap();
        assert_eq!(a.last_token_issued_at_us, Some(42));
        tokio::time::sleep(super::super::STAMP_FLUSH * 3).await;
        let other = Connection::open(dir.path().join("callsign.db")).unwrap();
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
