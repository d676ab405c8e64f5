//! The cluster's audit log in PostgreSQL: every node appends to one table, so that one query
//! answers "who revoked user X":
//!
//! ```sql
//! SELECT time, event->'actor' FROM audit_events
//!  WHERE type = 'identity.tokensRevoked' AND subject = '8:acs:…' ORDER BY id;
//! ```

use super::{unavailable, PostgresBackend};
use crate::store::{AuditRecord, AuditStore, StoreError};

const APPEND: &str = "INSERT INTO audit_events (time, type, subject, event) \
     VALUES (to_timestamp($1::float8 / 1e6), $2, $3, $4::text::jsonb) RETURNING id";

const LATEST: &str = "SELECT coalesce(max(id), 0) FROM audit_events";

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

const LIST: &str = "SELECT id, (extract(epoch FROM time) * 1e6)::bigint, type, subject, \
     event::text FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2";

const FORGET: &str = "DELETE FROM audit_events WHERE time < to_timestamp($1::float8 / 1e6)";

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

    async fn latest_event_id(&self) -> Result<i64, StoreError> {
        self.query_opt(LATEST, &[])
            .await?
            .map(|row| row.get(0))
            .ok_or_else(|| StoreError::Unavailable("max(id) returned no row".into()))
    }

    async fn list_events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(LIST, &[&after, &limit]).await?;
        Ok(rows
            .into_iter()
            .map(|row| AuditRecord {
                id: row.get(0),
                time_us: row.get(1),
                event_type: row.get(2),
                subject: row.get(3),
                json: row.get(4),
            })
            .collect())
    }

    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError> {
        let before = before_us as f64;
        self.execute(FORGET, &[&before]).await
    }
}
