//! Request counts per fixed time window, for throttling ([`crate::throttling`]). They live behind
//! the storage seam so that every server on one storage counts into the same windows: the nodes
//! of a cluster share PostgreSQL's counts, while a data dir (one process at a time) and memory
//! count in the process ([`LocalWindows`]).

use super::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counts the requests of an operation group in the current window.
#[async_trait::async_trait]
pub trait ThrottleStore: Send + Sync + 'static {
    /// Adds one request to `group`'s window that starts at `window_start` (Unix seconds, the
    /// same for every server) and returns the window's count including it. Earlier windows of
    /// the group may be forgotten from then on.
    async fn count_request(&self, group: &str, window_start: i64) -> Result<u64, StoreError>;
}

/// Window counts in this process's memory: exact for every server that shares the value (the
/// one process of a data dir; the servers of one [`super::MemoryStorage`]), and forgotten with it.
/// One entry per group: only the current window is kept.
#[derive(Debug, Default)]
pub struct LocalWindows {
    /// Group → (start of its current window, requests counted in it).
    counts: Mutex<HashMap<String, (i64, u64)>>,
}

impl LocalWindows {
    /// See [`ThrottleStore::count_request`].
    pub fn count(&self, group: &str, window_start: i64) -> u64 {
        // A panic cannot leave a half-made change: each change is one assignment.
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some((start, count)) = counts.get_mut(group) else {
            counts.insert(group.to_owned(), (window_start, 1));
            return 1;
        };
        if window_start > *start {
            *start = window_start;
            *count = 0;
        }
        // A request stamped with an earlier window (a clock set back) counts into the latest one:
        // never more requests through than the limit.
        *count += 1;
        *count
    }

    /// Forgets every count (a reset: throttling starts afresh).
    pub fn clear(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_per_group_and_restart() {
        let windows = LocalWindows::default();
        assert_eq!(windows.count("issue", 30), 1);
        assert_eq!(windows.count("issue", 30), 2);
        assert_eq!(windows.count("revoke", 30), 1);
        assert_eq!(windows.count("issue", 60), 1);
        assert_eq!(
            windows.count("issue", 30),
            2,
            "an earlier window counts into the latest"
        );
        assert_eq!(windows.count("revoke", 30), 2);
    }
}
