//! The single writer of the SQLite store: a dedicated thread that drains a queue of writes and
//! commits each batch in one transaction (group commit), so that concurrent writers share one
//! fsync. Nobody is told a write succeeded before the transaction holding it has committed.
//!
//! Token-issue times are informational and may lag: they are kept in memory ([`PendingStamps`]),
//! taken at most [`STAMP_FLUSH`] later and written right after, `STAMP_SLICE` at a time, each
//! slice riding along with the next batch.

use prometheus_client::metrics::histogram::Histogram;
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a token-issue time waits in memory before it is written.
pub const STAMP_FLUSH: Duration = Duration::from_millis(500);

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 1024;

/// The most token stamps written in one transaction. Each lands on a random page of a large
/// table, so a flush of every stamp of a busy half-second (a thousand users of ten million) held
/// the core for 5 ms at a stretch and showed in the token path's p99; in slices, the runtime
/// gets the core back between them (BENCHMARKS.md, "Scale").
const STAMP_SLICE: usize = 64;

/// A durable write: runs inside the batch's transaction and returns what to do once the batch
/// has committed (send the outcome). Dropped unrun, or its answer dropped, when the batch fails:
/// the waiter then sees the store unavailable.
pub type Job = Box<dyn FnOnce(&mut rusqlite::Transaction<'_>) -> Answer + Send>;

/// Sends a write's outcome; called only after COMMIT returned.
pub type Answer = Box<dyn FnOnce() + Send>;

/// Runs `f` in a savepoint: a write that fails midway leaves nothing behind in the batch.
pub fn in_savepoint<T>(
    tx: &mut rusqlite::Transaction<'_>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let savepoint = tx.savepoint()?;
    let value = f(&savepoint)?;
    savepoint.commit()?;
    Ok(value)
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

    /// Forgets every pending stamp (the identities are being removed).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
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

/// Runs until every sender is gone, then writes the pending stamps and returns. Each batch's
/// number of writes goes to `batches` (a metric).
pub fn run(
    mut conn: Connection,
    jobs: Receiver<Job>,
    stamps: Arc<PendingStamps>,
    batches: Histogram,
) {
    let mut next_flush = Instant::now() + STAMP_FLUSH;
    // Stamps taken at the last flush and not yet written: a slice goes with each transaction.
    let mut unwritten: Vec<(String, i64)> = Vec::new();
    // Once the queue is closed, one last snapshot takes what was stamped since the last one.
    let mut last_snapshot_taken = false;
    loop {
        let wait = if unwritten.is_empty() {
            next_flush.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
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
        let due_now = if closed {
            !last_snapshot_taken
        } else {
            Instant::now() >= next_flush
        };
        if unwritten.is_empty() && due_now {
            unwritten = stamps.snapshot();
            next_flush = Instant::now() + STAMP_FLUSH;
            last_snapshot_taken = closed;
        }
        if !batch.is_empty() {
            batches.observe(batch.len() as f64);
        }
        let slice = unwritten.len().saturating_sub(STAMP_SLICE);
        let due = unwritten.split_off(slice);
        if !batch.is_empty() || !due.is_empty() {
            commit(&mut conn, batch, &due, &stamps);
        }
        if !unwritten.is_empty() {
            // Let the runtime answer what arrived meanwhile before the next slice.
            std::thread::yield_now();
        } else if last_snapshot_taken {
            return;
        }
    }
}

/// One transaction for the whole batch; answers go out only after COMMIT returned.
fn commit(conn: &mut Connection, batch: Vec<Job>, due: &[(String, i64)], stamps: &PendingStamps) {
    let result = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|mut tx| {
            let answers: Vec<Answer> = batch.into_iter().map(|job| job(&mut tx)).collect();
            write_stamps(&tx, due)?;
            tx.commit()?;
            Ok(answers)
        });
    match result {
        Ok(answers) => {
            stamps.written(due);
            answers.into_iter().for_each(|answer| answer());
        }
        Err(e) => {
            tracing::warn!(error = %e, "committing a batch of writes failed");
            // The answers were dropped with the batch: every waiter sees the store unavailable.
        }
    }
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
