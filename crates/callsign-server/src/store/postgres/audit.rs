//! The cluster's audit log in PostgreSQL: every node appends to one table, so that one query
//! answers "who revoked user X":
//!
//! ```sql
//! SELECT time, event->'actor' FROM audit_events
//!  WHERE type = 'identity.tokensRevoked' AND subject = '8:acs:…' ORDER BY id;
//! ```

use super::{unavailable, PostgresBackend};
use crate::store::{AuditRecord, AuditStore, LogPosition, StoreError};
use tokio_postgres::Row;

const APPEND: &str = "INSERT INTO audit_events (time, type, subject, event) \
     VALUES (to_timestamp($1::float8 / 1e6), $2, $3, $4::text::jsonb) RETURNING id";

/// (Queries select `commit_xid::text`, and an output column's name wins in `ORDER BY`: they order
/// by `audit_events.commit_xid`, the xid8, not its text.)
///
/// Events whose appending transaction, and every older one, has finished: no event committed
/// later can sort before them.
const FINISHED: &str = "commit_xid < pg_snapshot_xmin(pg_current_snapshot())";

const COLUMNS: &str = "id, commit_xid::text, (extract(epoch FROM time) * 1e6)::bigint, type, \
     subject, event::text";

/// Appends `records` in `tx` (a change's own transaction).
pub(super) async fn append_in(
    tx: &deadpool_postgres::Transaction<'_>,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let statement = tx.prepare_cached(APPEND).await.map_err(unavailable)?;
    for record in records {
        let time_us = record.time_us as f64;
        tx.query_one(
            &statement,
            &[&time_us, &record.event_type, &record.subject, &record.json],
        )
        .await
        .map_err(unavailable)?;
    }
    Ok(())
}

/// A position from an `xid8` as text and an id.
pub(super) fn position(commit: &str, id: i64) -> Result<LogPosition, StoreError> {
    let commit = commit
        .parse()
        .map_err(|_| StoreError::Unavailable(format!("an unreadable xid8 {commit:?}")))?;
    Ok(LogPosition { commit, id })
}

fn record(row: &Row) -> Result<AuditRecord, StoreError> {
    let id = row.get(0);
    Ok(AuditRecord {
        id,
        commit: position(row.get(1), id)?.commit,
        time_us: row.get(2),
        event_type: row.get(3),
        subject: row.get(4),
        json: row.get(5),
    })
}

/// Deletes the events older than `$1` (µs) and moves the forgotten position up to the newest
/// of them, in one statement; answers how many.
const FORGET: &str = "WITH gone AS ( \
       DELETE FROM audit_events WHERE time < to_timestamp($1::float8 / 1e6) \
       RETURNING commit_xid, id), \
     newest AS (SELECT commit_xid, id FROM gone ORDER BY commit_xid DESC, id DESC LIMIT 1), \
     moved AS ( \
       UPDATE audit_forgotten f SET commit_xid = n.commit_xid, id = n.id FROM newest n \
       WHERE (n.commit_xid, n.id) > (f.commit_xid, f.id) RETURNING 1) \
     SELECT count(*) FROM gone";

#[async_trait::async_trait]
impl AuditStore for PostgresBackend {
    async fn append_event(&self, record: AuditRecord) -> Result<i64, StoreError> {
        let time_us = record.time_us as f64;
        self.query_opt(
            APPEND,
            &[&time_us, &record.event_type, &record.subject, &record.json],
        )
        .await?
        .map(|row| row.get(0))
        .ok_or_else(|| StoreError::Unavailable("appending returned no id".into()))
    }

    async fn latest_position(&self) -> Result<LogPosition, StoreError> {
        let row = self
            .query_opt(
                &format!(
                    "SELECT commit_xid::text, id FROM audit_events WHERE {FINISHED} \
                     ORDER BY audit_events.commit_xid DESC, id DESC LIMIT 1"
                ),
                &[],
            )
            .await?;
        match row {
            Some(row) => position(row.get(0), row.get(1)),
            None => Ok(LogPosition::START),
        }
    }

    async fn events_after(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM audit_events \
                     WHERE (commit_xid, id) > ($1::text::xid8, $2) AND {FINISHED} \
                     ORDER BY audit_events.commit_xid, id LIMIT $3"
                ),
                &[&after.commit.to_string(), &after.id, &limit],
            )
            .await?;
        rows.iter().map(record).collect()
    }

    async fn newest_events(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &format!("SELECT {COLUMNS} FROM audit_events ORDER BY id DESC LIMIT $1"),
                &[&limit],
            )
            .await?;
        rows.iter().map(record).collect()
    }

    async fn forgotten_through(&self) -> Result<LogPosition, StoreError> {
        let row = self
            .query_opt("SELECT commit_xid::text, id FROM audit_forgotten", &[])
            .await?
            .ok_or_else(|| StoreError::Unavailable("audit_forgotten has no row".into()))?;
        position(row.get(0), row.get(1))
    }

    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError> {
        let before = before_us as f64;
        let row = self.query_opt(FORGET, &[&before]).await?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0).max(0) as u64))
    }
}
