//! What a backend tells the metrics about itself (`GET /metrics`): its name, how many identities
//! are live, and the state of its connection pool or write batching, where it has them.

use super::StoreError;
use prometheus_client::metrics::histogram::Histogram;

/// A connection pool's state (PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open.
    pub size: usize,
    /// Connections open and idle.
    pub available: usize,
    /// Operations waiting for a connection.
    pub waiting: usize,
    /// The most connections the pool opens.
    pub max_size: usize,
}

/// Figures a backend reports for monitoring.
#[async_trait::async_trait]
pub trait StoreStats: Send + Sync + 'static {
    /// The backend's name in metric labels: `sqlite`, `postgres` or `memory`.
    fn backend_name(&self) -> &'static str;

    /// How many identities are live (not deleted). May scan the table: callers cache it.
    async fn count_identities(&self) -> Result<u64, StoreError>;

    /// The connection pool's state, for a backend with a pool.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }

    /// Writes per group-commit transaction, for a backend that batches its writes (recorded by
    /// the writer; registered by the metrics).
    fn group_commit_batches(&self) -> Option<Histogram> {
        None
    }
}
