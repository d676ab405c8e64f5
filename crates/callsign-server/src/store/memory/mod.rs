//! The in-memory backend: everything in this process's memory, nothing on disk — for tests and
//! throwaway local instances (`serve --in-memory`). It keeps the same contract as the other
//! backends (`tests/store_suite.rs` runs against it), and is gone when the process ends.
//!
//! One lock guards all the state: every operation is a few map look-ups, far shorter than the
//! HTTP and signing work around it.

mod assignments;
mod identities;
mod keys;
mod transfer;
mod webhooks;

use super::{
    AuditRecord, AuditStore, EntraAssignment, HealthStore, IdentityRecord, LocalWindows,
    LogPosition, StoreError, TeamsExtensionAssignment, ThrottleStore,
};
use keys::StoredKeys;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A handle to one in-memory store; clones (and every backend opened from them) share it, so
/// opening it again is what a restart of a node that kept its memory would be.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    state: Arc<Mutex<State>>,
    /// Throttling counts, apart from `state`: counting never waits for the other operations.
    windows: Arc<LocalWindows>,
}

impl MemoryStorage {
    /// A new, empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStorage")
    }
}

#[derive(Default)]
struct State {
    /// Ordered by id, as the databases' primary keys are, for keyset paging.
    identities: BTreeMap<String, IdentityRecord>,
    /// Live identities by custom id.
    custom_ids: HashMap<String, String>,
    teams_extension: BTreeMap<(String, String), TeamsExtensionAssignment>,
    entra: BTreeMap<String, EntraAssignment>,
    keys: Option<StoredKeys>,
    /// The audit log, oldest first, and the id the last appended event got.
    audit: Vec<AuditRecord>,
    last_audit_id: i64,
    /// The newest event the retention deleted.
    forgotten_id: i64,
    /// Each webhook's delivery progress and lease.
    webhooks: HashMap<String, webhooks::Progress>,
}

impl State {
    /// Appends `records` to the log, each with the next id.
    fn append(&mut self, records: Vec<AuditRecord>) {
        for mut record in records {
            self.last_audit_id += 1;
            record.id = self.last_audit_id;
            self.audit.push(record);
        }
    }
}

/// The in-memory backend over a [`MemoryStorage`].
#[derive(Clone)]
pub struct MemoryBackend {
    storage: MemoryStorage,
}

impl MemoryBackend {
    /// The backend over `storage`.
    pub fn open(storage: &MemoryStorage) -> Self {
        Self {
            storage: storage.clone(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-made change: every change is
        // computed first and then stored with plain assignments.
        self.storage
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Memory takes writes as long as the process runs.
#[async_trait::async_trait]
impl HealthStore for MemoryBackend {
    async fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Servers sharing one [`MemoryStorage`] share its counts, as the nodes of a cluster do.
#[async_trait::async_trait]
impl ThrottleStore for MemoryBackend {
    async fn count_request(&self, group: &str, window_start: i64) -> Result<u64, StoreError> {
        Ok(self.storage.windows.count(group, window_start))
    }
}

/// The log in memory: ids count up from 1 for the life of the [`MemoryStorage`].
#[async_trait::async_trait]
impl AuditStore for MemoryBackend {
    async fn append_event(&self, record: AuditRecord) -> Result<i64, StoreError> {
        let mut state = self.state();
        state.append(vec![record]);
        Ok(state.last_audit_id)
    }

    async fn latest_position(&self) -> Result<LogPosition, StoreError> {
        Ok(self
            .state()
            .audit
            .last()
            .map_or(LogPosition::START, AuditRecord::position))
    }

    async fn events_after(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.state();
        // Appended under the lock in id order: the id is the position.
        let start = state.audit.partition_point(|r| r.id <= after.id);
        Ok(state.audit[start..].iter().take(limit).cloned().collect())
    }

    async fn newest_events(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self
            .state()
            .audit
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn forgotten_through(&self) -> Result<LogPosition, StoreError> {
        Ok(LogPosition {
            commit: 0,
            id: self.state().forgotten_id,
        })
    }

    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError> {
        let mut state = self.state();
        let newest = state
            .audit
            .iter()
            .filter(|r| r.time_us < before_us)
            .map(|r| r.id)
            .max();
        if let Some(newest) = newest {
            state.forgotten_id = state.forgotten_id.max(newest);
        }
        let before = state.audit.len();
        state.audit.retain(|r| r.time_us >= before_us);
        Ok((before - state.audit.len()) as u64)
    }
}

#[async_trait::async_trait]
impl super::StoreStats for MemoryBackend {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn count_identities(&self) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .identities
            .values()
            .filter(|r| r.is_live())
            .count() as u64)
    }
}
