//! The audit log in the data dir's SQLite file: appends through the group-commit writer (durable
//! before the response), reads on the reader pool.

use super::SqliteBackend;
use crate::store::{AuditRecord, AuditStore, StoreError};
use rusqlite::{Connection, OptionalExtension};

/// Appends `records` in the caller's transaction (a change's own); returns the last one's id.
pub(super) fn append(conn: &Connection, records: &[AuditRecord]) -> rusqlite::Result<i64> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO audit_events (time_us, type, subject, event) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for record in records {
        insert.execute(rusqlite::params![
            record.time_us,
            record.event_type,
            record.subject,
            record.json
        ])?;
    }
    Ok(conn.last_insert_rowid())
}

#[async_trait::async_trait]
impl AuditStore for SqliteBackend {
    async fn append_event(&self, record: AuditRecord) -> Result<i64, StoreError> {
        self.write(move |conn| append(conn, std::slice::from_ref(&record)))
            .await
    }

    async fn latest_event_id(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT max(id) FROM audit_events", [], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .optional()
            .map(|id| id.flatten().unwrap_or(0))
        })
        .await
    }

    async fn list_events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, time_us, type, subject, event FROM audit_events \
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = statement.query_map([after, limit], |row| {
                Ok(AuditRecord {
                    id: row.get(0)?,
                    time_us: row.get(1)?,
                    event_type: row.get(2)?,
                    subject: row.get(3)?,
                    json: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError> {
        self.write(move |conn| {
            conn.execute("DELETE FROM audit_events WHERE time_us < ?1", [before_us])
        })
        .await
        .map(|n| n as u64)
    }
}
