//! Identities in the data dir's SQLite file.

use super::token_cache::TokenCache;
use super::writer::PendingStamps;
use super::SqliteBackend;
use crate::store::{AuditRecord, IdentityRecord, IdentityStore, StoreError, TokenState};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) const COLUMNS: &str =
    "id, custom_id, created_at_us, last_token_issued_at_us, revoked_before_us, deleted_at_us";

/// A page of live identities by id: a range scan of the primary key from `?1` (every id sorts
/// after ''; an `OR ?1 IS NULL` would turn the range into a scan from the start).
const LIST: &str = "SELECT id, custom_id, created_at_us, last_token_issued_at_us, \
     revoked_before_us, deleted_at_us FROM identities \
     WHERE id > coalesce(?1, '') AND deleted_at_us IS NULL ORDER BY id LIMIT ?2";

/// A page of the revoked or deleted identities by id, from `?1`: a range scan of the partial
/// index `identities_stamped` (its condition repeated word for word, so SQLite picks it).
const REVOCATIONS: &str = "SELECT id, custom_id, created_at_us, last_token_issued_at_us, \
     revoked_before_us, deleted_at_us FROM identities \
     WHERE id > coalesce(?1, '') AND (revoked_before_us IS NOT NULL OR deleted_at_us IS NOT NULL) \
     ORDER BY id LIMIT ?2";

/// The live identity with custom id `?2` (if after `?1`): a look-up in the custom id index.
const LIST_BY_CUSTOM_ID: &str = "SELECT id, custom_id, created_at_us, last_token_issued_at_us, \
     revoked_before_us, deleted_at_us FROM identities \
     WHERE custom_id = ?2 AND deleted_at_us IS NULL AND id > coalesce(?1, '') LIMIT ?3";

pub(super) fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityRecord> {
    Ok(IdentityRecord {
        id: row.get(0)?,
        custom_id: row.get(1)?,
        created_at_us: row.get(2)?,
        last_token_issued_at_us: row.get(3)?,
        revoked_before_us: row.get(4)?,
        deleted_at_us: row.get(5)?,
    })
}

/// The row of `id`, as stored (without the pending token stamps).
fn read_one(conn: &Connection, id: &str) -> rusqlite::Result<Option<IdentityRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE id = ?1"))?
        .query_row([id], read_record)
        .optional()
}

/// The record with its token-issue time brought up to date with the stamps not yet written.
pub(super) fn with_pending_stamp(
    stamps: &PendingStamps,
    mut record: IdentityRecord,
) -> IdentityRecord {
    if let Some(pending) = stamps.get(&record.id) {
        let stored = record.last_token_issued_at_us.unwrap_or(i64::MIN);
        record.last_token_issued_at_us = Some(stored.max(pending));
    }
    record
}

/// Inserts `record` and appends `events`, unless a live identity already has its custom id: then
/// that one, and no events.
fn create(
    conn: &Connection,
    record: IdentityRecord,
    events: &[AuditRecord],
) -> rusqlite::Result<IdentityRecord> {
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
    super::audit::append(conn, events)?;
    Ok(record)
}

/// Runs one prepared change of the identity `id` that returns the stamp it stored, and tells
/// whether there was one; if so, appends `events`, each with the stamp as `details.<detail>`.
fn stamp_one(
    conn: &Connection,
    sql: &str,
    id: &str,
    at: i64,
    events: Vec<AuditRecord>,
    detail: &str,
) -> rusqlite::Result<bool> {
    let stamp: Option<i64> = conn
        .prepare_cached(sql)?
        .query_row(params![id, at], |row| row.get(0))
        .optional()?;
    let Some(stamp) = stamp else {
        return Ok(false);
    };
    let events: Vec<_> = events
        .into_iter()
        .map(|e| e.with_detail(detail, stamp))
        .collect();
    super::audit::append(conn, &events)?;
    Ok(true)
}

impl SqliteBackend {
    /// [`stamp_one`] on the writer; the identity's cached token state is forgotten once the
    /// change has committed (revoke and delete both change it).
    async fn stamp_and_forget(
        &self,
        sql: &'static str,
        id: String,
        at: i64,
        events: Vec<AuditRecord>,
        detail: &'static str,
    ) -> Result<bool, StoreError> {
        let changed = id.clone();
        self.write_then(
            move |conn| stamp_one(conn, sql, &id, at, events, detail),
            move |tokens| tokens.remove(&changed),
        )
        .await
    }
}

#[async_trait::async_trait]
impl IdentityStore for SqliteBackend {
    async fn create_identity_with_events(
        &self,
        record: IdentityRecord,
        events: Vec<AuditRecord>,
    ) -> Result<IdentityRecord, StoreError> {
        let record = self
            .write(move |conn| create(conn, record, &events))
            .await?;
        Ok(with_pending_stamp(&self.inner.stamps, record))
    }

    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError> {
        let stamps = self.inner.stamps.clone();
        self.read(move |conn| Ok(read_one(conn, &id)?.map(|r| with_pending_stamp(&stamps, r))))
            .await
    }

    /// From the token cache; a miss reads the row and caches its state (see
    /// [`super::token_cache`] for why that stays exact).
    async fn token_state(&self, id: &str) -> Result<Option<TokenState>, StoreError> {
        let cache = self.inner.tokens.as_deref();
        let miss = match cache.map(|cache| cache.get(id)) {
            Some(Ok(hit)) => return Ok(Some(hit)),
            Some(Err(miss)) => Some(miss),
            None => None,
        };
        let id = id.to_owned();
        let found = self
            .read(move |conn| Ok(read_one(conn, &id)?.map(|r| r.token_state())))
            .await?;
        if let (Some(cache), Some(miss), Some(state)) = (cache, miss, found) {
            cache.fill(miss, state);
        }
        Ok(found)
    }

    /// Kept in memory and written within [`super::STAMP_FLUSH`]; reads see it at once.
    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError> {
        self.inner.stamps.record(id, at_us);
        Ok(())
    }

    async fn revoke_tokens_with_events(
        &self,
        id: String,
        before_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        // A revoke covers every issue recorded so far, written or still pending (a node whose clock
        // runs ahead may have stamped a token later than `before_us`).
        let before = self
            .inner
            .stamps
            .get(&id)
            .map_or(before_us, |pending| pending.max(before_us));
        self.stamp_and_forget(
            "UPDATE identities SET revoked_before_us = \
             max(coalesce(revoked_before_us, 0), ?2, coalesce(last_token_issued_at_us, 0)) \
             WHERE id = ?1 AND deleted_at_us IS NULL RETURNING revoked_before_us",
            id,
            before,
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
        let stamps = self.inner.stamps.clone();
        self.read(move |conn| {
            let page = match custom_id {
                None => conn
                    .prepare_cached(LIST)?
                    .query_map(params![after, limit], read_record)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
                Some(custom_id) => conn
                    .prepare_cached(LIST_BY_CUSTOM_ID)?
                    .query_map(params![after, custom_id, limit], read_record)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            };
            Ok(page
                .into_iter()
                .map(|r| with_pending_stamp(&stamps, r))
                .collect())
        })
        .await
    }

    async fn list_revocations(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(REVOCATIONS)?
                .query_map(params![after, limit], read_record)?
                .collect()
        })
        .await
    }

    async fn reset_with_events(&self, events: Vec<AuditRecord>) -> Result<(), StoreError> {
        self.inner.stamps.clear();
        self.inner.windows.clear();
        self.write_then(
            move |conn| {
                conn.execute_batch(
                    "DELETE FROM identities; DELETE FROM teams_extension_assignments; \
                     DELETE FROM entra_assignments;",
                )?;
                super::audit::append(conn, &events).map(drop)
            },
            TokenCache::clear,
        )
        .await
    }

    async fn delete_identity_with_events(
        &self,
        id: String,
        at_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.stamp_and_forget(
            "UPDATE identities SET deleted_at_us = ?2 \
             WHERE id = ?1 AND deleted_at_us IS NULL RETURNING deleted_at_us",
            id,
            at_us,
            events,
            "deletedAtMicros",
        )
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

    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn listing_is_a_range_scan_of_an_index() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteBackend::open(dir.path(), OpenMode::Create).unwrap());
        let conn = Connection::open(dir.path().join("callsign.db")).unwrap();
        for after in [Some("8:acs:x"), None] {
            assert_eq!(
                plan(&conn, LIST, params![after, 10]),
                ["SEARCH identities USING INDEX sqlite_autoindex_identities_1 (id>?)"],
                "no full scan, no sort"
            );
        }
        assert_eq!(
            plan(&conn, REVOCATIONS, params![None::<String>, 10]),
            ["SEARCH identities USING INDEX identities_stamped (id>?)"]
        );
        assert_eq!(
            plan(&conn, LIST_BY_CUSTOM_ID, params![None::<String>, "bob", 10]),
            ["SEARCH identities USING INDEX identities_live_custom_id (custom_id=?)"]
        );
    }

    /// The token states a serving process caches: every revoke, delete and reset that has
    /// returned is seen by the next read, however many reads race the writes (and fill the cache
    /// with what they read before a write committed).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn token_states_see_every_acknowledged_change_despite_racing_reads() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteBackend::open(dir.path(), OpenMode::Serve).unwrap();
        assert!(store.inner.tokens.is_some(), "a serving process caches");
        let ids: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
        for id in &ids {
            store
                .create_identity(IdentityRecord::new(id.clone(), None, 1))
                .await
                .unwrap();
        }
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|r| {
                let (store, ids, stop) = (store.clone(), ids.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = r;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        store.token_state(&ids[n % ids.len()]).await.unwrap();
                    }
                })
            })
            .collect();
        for round in 1..=100_i64 {
            for id in &ids {
                assert!(store.revoke_tokens(id.clone(), round * 10).await.unwrap());
                let Some(TokenState::Live { revoked_before_us }) =
                    store.token_state(id).await.unwrap()
                else {
                    panic!("{id} is live");
                };
                assert!(revoked_before_us >= Some(round * 10), "round {round}: {id}");
            }
        }
        for id in &ids {
            assert!(store.delete_identity(id.clone(), 5_000).await.unwrap());
            assert_eq!(
                store.token_state(id).await.unwrap(),
                Some(TokenState::Deleted)
            );
        }
        store.reset().await.unwrap();
        for id in &ids {
            assert_eq!(store.token_state(id).await.unwrap(), None);
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.await.unwrap();
        }
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

    #[tokio::test]
    async fn every_slice_of_pending_stamps_is_written_before_the_store_closes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteBackend::open(dir.path(), OpenMode::Create).unwrap();
        // More stamps than a few of the writer's slices, none flushed yet.
        let ids: Vec<String> = (0..200).map(|i| format!("id-{i}")).collect();
        for id in &ids {
            let record = IdentityRecord::new(id.clone(), None, 1);
            store.create_identity(record).await.unwrap();
            store.record_token_issued(id.clone(), 7).await.unwrap();
        }
        drop(store);
        let other = Connection::open(dir.path().join("callsign.db")).unwrap();
        let stored: i64 = other
            .query_row(
                "SELECT count(*) FROM identities WHERE last_token_issued_at_us = 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 200);
    }
}
