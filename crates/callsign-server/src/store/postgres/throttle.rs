//! Throttling counts in PostgreSQL: one row per operation group and window, counted up by every
//! node with one upsert, so that a limit holds across the cluster exactly.

use super::PostgresBackend;
use crate::store::{StoreError, ThrottleStore};

/// Counts one request and returns the window's count: the row lock serialises the nodes'
/// increments, and each sees the count its own increment made.
const COUNT: &str = "INSERT INTO throttle_windows (operation_group, window_start, requests) \
     VALUES ($1, $2, 1) ON CONFLICT (operation_group, window_start) \
     DO UPDATE SET requests = throttle_windows.requests + 1 RETURNING requests";

/// Forgets the group's earlier windows (run by the request that opens a window).
const FORGET: &str =
    "DELETE FROM throttle_windows WHERE operation_group = $1 AND window_start < $2";

#[async_trait::async_trait]
impl ThrottleStore for PostgresBackend {
    async fn count_request(&self, group: &str, window_start: i64) -> Result<u64, StoreError> {
        let count: i64 = self
            .query_opt(COUNT, &[&group, &window_start])
            .await?
            .ok_or_else(|| StoreError::Unavailable("counting returned no row".into()))?
            .get(0);
        if count == 1 {
            self.execute(FORGET, &[&group, &window_start]).await?;
        }
        Ok(u64::try_from(count).unwrap_or(u64::MAX))
    }
}
