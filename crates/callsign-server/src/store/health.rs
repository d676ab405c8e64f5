//! Whether the storage can take writes now: what `/readyz` reports ([`crate::readiness`]).

use super::StoreError;

/// Checks that a write would be accepted now, by making a small one where that is the only sure
/// way to know (a data dir) or by asking the database (PostgreSQL).
#[async_trait::async_trait]
pub trait HealthStore: Send + Sync + 'static {
    /// `Ok` when writes are accepted now; the error says why not ("disk full: …",
    /// "PostgreSQL is unreachable: …", "PostgreSQL is a read-only standby").
    async fn check_writable(&self) -> Result<(), StoreError>;
}
