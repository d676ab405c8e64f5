//! The single writer of the SQLite store: a dedicated thread that drains a queue of writes and
//! commits each batch in one transaction (group commit), so that concurrent writers share one
//! fsync. Nobody is told a write succeeded before the transaction holding it has committed.
//!
//! Token-issue times are informational and may lag: they are kept in memory ([`PendingStamps`])
//! and written at most [`STAMP_FLUSH`] later, riding along with the next batch.

use super::{read_record, COLUMNS};
use crate::store::IdentityRecord;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The longest a token-issue time waits in memory before it is written.
pub const STAMP_FLUSH: Duration = Duration::from_millis(500);

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 1024;

/// A durable write and where to send its outcome once committed.
pub enum Job {
    /// Insert an identity (or find the live one with the same custom id).
    Create(
        IdentityRecord,
        oneshot::Sender<rusqlite::Result<IdentityRecord>>,
    ),
    /// Move the revocation cut-off forward.
    Revoke(String, i64, oneshot::Sender<rusqlite::Result<bool>>),
    /// Mark an identity deleted.
    Delete(String, i64, oneshot::Sender<rusqlite::Result<bool>>),
}

/// Token-issue times not yet written, by identity id; readers overlay them on what they read.
#[derive(Default)]
pub struct PendingStamps(Mutex<HashMap<String, i64>>);

impl PendingStamps {
    /// Notes a token issued at `at_us` (keeping the latest per identity).
    pub fn record(&self, id: String, at_us: i64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = map.entry(id).or_insert(at_us);
        *stamp = (*stamp).max(at_us);
    }

    /// The pending stamp for `id`, if any.
    pub fn get(&self, id: &str) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    fn snapshot(&self) -> Vec<(String, i64)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Forgets stamps that are now on disk (unless a later one arrived meanwhile).
    fn written(&self, stamps: &[(String, i64)]) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (id, at) in stamps {
            if map.get(id) == Some(at) {
                map.remove(id);
            }
        }
    }
}

/// Runs until every sender is gone, then writes the pending stamps and returns.
pub fn run(mut conn: Connection, jobs: Receiver<Job>, stamps: Arc<PendingStamps>) {
    let mut next_flush = Instant::now() + STAMP_FLUSH;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        let mut batch = Vec::new();
        let closed = match jobs.recv_timeout(wait) {
            Ok(job) => {
                batch.push(job);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let flush = closed || Instant::now() >= next_flush;
        let due = if flush { stamps.snapshot() } else { Vec::new() };
        if flush {
            next_flush = Instant::now() + STAMP_FLUSH;
        }
        if !batch.is_empty() || !due.is_empty() {
            commit(&mut conn, batch, &due, &stamps);
        }
        if closed {
            return;
        }
    }
}

/// An outcome waiting for its transaction to commit.
enum Outcome {
    Created(
        rusqlite::Result<IdentityRecord>,
        oneshot::Sender<rusqlite::Result<IdentityRecord>>,
    ),
    Changed(
        rusqlite::Result<bool>,
        oneshot::Sender<rusqlite::Result<bool>>,
    ),
}

/// One transaction for the whole batch; replies go out only after COMMIT returned.
fn commit(conn: &mut Connection, batch: Vec<Job>, due: &[(String, i64)], stamps: &PendingStamps) {
    let result = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|tx| {
            let outcomes: Vec<Outcome> = batch.into_iter().map(|job| apply(&tx, job)).collect();
            write_stamps(&tx, due)?;
            tx.commit()?;
            Ok(outcomes)
        });
    match result {
        Ok(outcomes) => {
            stamps.written(due);
            for outcome in outcomes {
                match outcome {
                    Outcome::Created(r, reply) => drop(reply.send(r)),
                    Outcome::Changed(r, reply) => drop(reply.send(r)),
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "committing a batch of writes failed");
            // The senders were dropped with the batch: every waiter sees the store unavailable.
        }
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, job: Job) -> Outcome {
    match job {
        Job::Create(record, reply) => Outcome::Created(create(tx, record), reply),
        Job::Revoke(id, before, reply) => Outcome::Changed(
            tx.prepare_cached(
                "UPDATE identities SET revoked_before_us = \
                 max(coalesce(revoked_before_us, 0), ?2, coalesce(last_token_issued_at_us, 0)) \
                 WHERE id = ?1 AND deleted_at_us IS NULL",
            )
            .and_then(|mut s| s.execute(params![id, before]))
            .map(|n| n == 1),
            reply,
        ),
        Job::Delete(id, at, reply) => Outcome::Changed(
            tx.prepare_cached(
                "UPDATE identities SET deleted_at_us = ?2 WHERE id = ?1 AND deleted_at_us IS NULL",
            )
            .and_then(|mut s| s.execute(params![id, at]))
            .map(|n| n == 1),
            reply,
        ),
    }
}

fn create(
    tx: &rusqlite::Transaction<'_>,
    record: IdentityRecord,
) -> rusqlite::Result<IdentityRecord> {
    if let Some(custom_id) = &record.custom_id {
        let existing = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM identities WHERE custom_id = ?1 AND deleted_at_us IS NULL"
            ))?
            .query_row([custom_id], read_record)
            .optional()?;
        if let Some(existing) = existing {
            return Ok(existing);
        }
    }
    tx.prepare_cached("INSERT INTO identities (id, custom_id, created_at_us) VALUES (?1, ?2, ?3)")?
        .execute(params![record.id, record.custom_id, record.created_at_us])?;
    Ok(record)
}

fn write_stamps(tx: &rusqlite::Transaction<'_>, due: &[(String, i64)]) -> rusqlite::Result<()> {
    let mut update = tx.prepare_cached(
        "UPDATE identities SET last_token_issued_at_us = \
         max(coalesce(last_token_issued_at_us, 0), ?2) WHERE id = ?1",
    )?;
    for (id, at) in due {
        update.execute(params![id, at])?;
    }
    Ok(())
}
