//! Identities in PostgreSQL. A unique partial index on the live custom ids decides between nodes
//! creating the same `customId` at once.

use super::{audit, bounded, unavailable, PostgresBackend};
use crate::store::{AuditRecord, IdentityRecord, IdentityStore, StoreError};
use tokio_postgres::Row;

pub(super) const COLUMNS: &str =
    "id, custom_id, created_at_us, last_token_issued_at_us, revoked_before_us, deleted_at_us";

/// A page of live identities by id: a range scan of the primary key from `$1` (every id sorts
/// after ''; an `OR $1 IS NULL` would turn the range into a scan from the start).
pub(super) const LIST: &str = "SELECT id, custom_id, created_at_us, last_token_issued_at_us, \
     revoked_before_us, deleted_at_us FROM identities \
     WHERE id > coalesce($1::TEXT, '') AND deleted_at_us IS NULL ORDER BY id LIMIT $2";

/// A page of the revoked or deleted identities by id, from `$1` (the partial index
/// `identities_stamped`).
const REVOCATIONS: &str = "SELECT id, custom_id, created_at_us, last_token_issued_at_us, \
     revoked_before_us, deleted_at_us FROM identities \
     WHERE id > coalesce($1::TEXT, '') AND (revoked_before_us IS NOT NULL OR deleted_at_us IS NOT NULL) \
     ORDER BY id LIMIT $2";

/// The live identity with custom id `$2` (if after `$1`): a look-up in the custom id index.
const LIST_BY_CUSTOM_ID: &str = "SELECT id, custom_id, created_at_us, last_token_issued_at_us, \
     revoked_before_us, deleted_at_us FROM identities \
     WHERE custom_id = $2 AND deleted_at_us IS NULL AND id > coalesce($1::TEXT, '') LIMIT $3";

pub(super) fn read_record(row: &Row) -> IdentityRecord {
    IdentityRecord {
        id: row.get(0),
        custom_id: row.get(1),
        created_at_us: row.get(2),
        last_token_issued_at_us: row.get(3),
        revoked_before_us: row.get(4),
        deleted_at_us: row.get(5),
    }
}

impl PostgresBackend {
    /// Runs a change of the identity `id` that returns the stamp it stored, and tells whether
    /// there was one; if so, appends `events` in the same transaction, each with the stamp as
    /// `details.<detail>`.
    async fn stamp_one(
        &self,
        sql: &str,
        id: &str,
        at: i64,
        events: Vec<AuditRecord>,
        detail: &str,
    ) -> Result<bool, StoreError> {
        let stamped = |row: &Row| {
            let stamp: i64 = row.get(0);
            events
                .into_iter()
                .map(|e| e.with_detail(detail, stamp))
                .collect()
        };
        let row = self
            .query_opt_with_events_from(sql, &[&id, &at], stamped)
            .await?;
        Ok(row.is_some())
    }

    /// Creates the identity and appends `events` in one transaction, or returns the live one
    /// with its custom id (and appends nothing).
    async fn create(
        &self,
        record: IdentityRecord,
        events: &[AuditRecord],
    ) -> Result<IdentityRecord, StoreError> {
        let mut client = self.client().await?;
        let client = client.transaction().await.map_err(unavailable)?;
        let insert = client
            .prepare_cached(&format!(
                "INSERT INTO identities (id, custom_id, created_at_us) VALUES ($1, $2, $3) \
                 ON CONFLICT (custom_id) WHERE custom_id IS NOT NULL AND deleted_at_us IS NULL \
                 DO NOTHING RETURNING {COLUMNS}"
            ))
            .await
            .map_err(unavailable)?;
        let find = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM identities WHERE custom_id = $1 AND deleted_at_us IS NULL"
            ))
            .await
            .map_err(unavailable)?;
        // A conflicting identity can be deleted between the insert and the look-up; try again then.
        for _ in 0..3 {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&record.id, &record.custom_id, &record.created_at_us];
            if let Some(row) = client
                .query_opt(&insert, &params)
                .await
                .map_err(unavailable)?
            {
                audit::append_in(&client, events).await?;
                client.commit().await.map_err(unavailable)?;
                return Ok(read_record(&row));
            }
            if let Some(row) = client
                .query_opt(&find, &[&record.custom_id])
                .await
                .map_err(unavailable)?
            {
                return Ok(read_record(&row));
            }
        }
        Err(StoreError::Unavailable(
            "the identity with this custom id kept changing".into(),
        ))
    }
}

#[async_trait::async_trait]
impl IdentityStore for PostgresBackend {
    async fn create_identity_with_events(
        &self,
        record: IdentityRecord,
        events: Vec<AuditRecord>,
    ) -> Result<IdentityRecord, StoreError> {
        bounded(self.create(record, &events)).await
    }

    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError> {
        let row = self
            .query_opt(
                &format!("SELECT {COLUMNS} FROM identities WHERE id = $1"),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(read_record))
    }

    /// One statement, one round trip: the row lock orders it with a revoke on any node, so the
    /// stamp it returns is after every revocation committed before it, and a revocation
    /// committed after it covers it (the revoke takes the recorded stamp into its cut-off).
    async fn stamp_token(&self, id: &str, at_us: i64) -> Result<Option<i64>, StoreError> {
        let row = self
            .query_opt(
                "UPDATE identities SET last_token_issued_at_us = greatest(\
                 coalesce(last_token_issued_at_us, 0), $2, coalesce(revoked_before_us, 0) + 1) \
                 WHERE id = $1 AND deleted_at_us IS NULL \
                 RETURNING greatest($2, coalesce(revoked_before_us, 0) + 1)",
                &[&id, &at_us],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE identities SET last_token_issued_at_us = \
             greatest(coalesce(last_token_issued_at_us, 0), $2) WHERE id = $1",
            &[&id, &at_us],
        )
        .await
        .map(drop)
    }

    async fn revoke_tokens_with_events(
        &self,
        id: String,
        before_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.stamp_one(
            "UPDATE identities SET revoked_before_us = greatest(\
             coalesce(revoked_before_us, 0), $2, coalesce(last_token_issued_at_us, 0)) \
             WHERE id = $1 AND deleted_at_us IS NULL RETURNING revoked_before_us",
            &id,
            before_us,
            events,
            "revokedBeforeMicros",
        )
        .await
    }

    async fn list_identities(
        &self,
        after: Option<String>,
        limit: u32,
        custom_id: Option<String>,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        let limit = i64::from(limit);
        let rows = match custom_id {
            None => self.query(LIST, &[&after, &limit]).await?,
            Some(custom_id) => {
                self.query(LIST_BY_CUSTOM_ID, &[&after, &custom_id, &limit])
                    .await?
            }
        };
        Ok(rows.iter().map(read_record).collect())
    }

    async fn list_revocations(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = self
            .query(REVOCATIONS, &[&after, &i64::from(limit)])
            .await?;
        Ok(rows.iter().map(read_record).collect())
    }

    async fn reset_with_events(&self, events: Vec<AuditRecord>) -> Result<(), StoreError> {
        bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(unavailable)?;
            tx.batch_execute(
                "DELETE FROM identities; DELETE FROM teams_extension_assignments; \
                 DELETE FROM entra_assignments; DELETE FROM throttle_windows;",
            )
            .await
            .map_err(unavailable)?;
            audit::append_in(&tx, &events).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    async fn delete_identity_with_events(
        &self,
        id: String,
        at_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.stamp_one(
            "UPDATE identities SET deleted_at_us = $2 \
             WHERE id = $1 AND deleted_at_us IS NULL RETURNING deleted_at_us",
            &id,
            at_us,
            events,
            "deletedAtMicros",
        )
        .await
    }
}
