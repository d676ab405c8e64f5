//! The audit log in the data dir's SQLite file: appends through the group-commit writer (durable
//! before the response), reads on the reader pool.

use super::SqliteBackend;
use crate::store::{AuditRecord, AuditStore, LogPosition, StoreError};
use rusqlite::Connection;

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.get(0)?,
        commit: 0,
        time_us: row.get(1)?,
        event_type: row.get(2)?,
        subject: row.get(3)?,
        json: row.get(4)?,
    })
}

/// A data dir's position of the event with `id`: one writer commits events in id order.
fn position(id: i64) -> LogPosition {
    LogPosition { commit: 0, id }
}

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

    async fn latest_position(&self) -> Result<LogPosition, StoreError> {
        self.read(|conn| {
            let id: Option<i64> =
                conn.query_row("SELECT max(id) FROM audit_events", [], |row| row.get(0))?;
            Ok(position(id.unwrap_or(0)))
        })
        .await
    }

    async fn events_after(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One writer commits events in id order: the id is the position.
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, time_us, type, subject, event FROM audit_events \
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = statement.query_map([after.id, limit], read_record)?;
            rows.collect()
        })
        .await
    }

    async fn newest_events(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, time_us, type, subject, event FROM audit_events \
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit], read_record)?;
            rows.collect()
        })
        .await
    }

    async fn forgotten_through(&self) -> Result<LogPosition, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT id FROM audit_forgotten", [], |row| row.get(0))
                .map(position)
        })
        .await
    }

    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let newest: Option<i64> = conn.query_row(
                "SELECT max(id) FROM audit_events WHERE time_us < ?1",
                [before_us],
                |row| row.get(0),
            )?;
            let Some(newest) = newest else { return Ok(0) };
            conn.execute("UPDATE audit_forgotten SET id = max(id, ?1)", [newest])?;
            conn.execute("DELETE FROM audit_events WHERE time_us < ?1", [before_us])
        })
        .await
        .map(|n| n as u64)
    }
}
