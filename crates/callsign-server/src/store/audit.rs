//! The audit trail's durable log ([`crate::audit`]): events appended in order, each with an
//! increasing id, read back after an id (tests, and later the change feed), and forgotten once
//! older than the retention.
//!
//! The store knows an event only as its time, type, subject and JSON text, so that it does not
//! depend on the audit layer above it; the columns beside the JSON are what queries filter on
//! (on PostgreSQL, "who revoked user X" is one `SELECT` on `audit_events`).

use super::StoreError;

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its position in the log: increasing, never reused; 0 before it is appended.
    pub id: i64,
    /// When it happened, microseconds since the epoch.
    pub time_us: i64,
    /// Its stable type name (`identity.created`, …).
    pub event_type: String,
    /// The identity or object it is about, if any.
    pub subject: Option<String>,
    /// The whole event as JSON (its `id` field is not authoritative: [`AuditRecord::id`] is).
    pub json: String,
}

/// The audit log's storage.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends `record` (its `id` is ignored) durably and returns the id it was given.
    async fn append_event(&self, record: AuditRecord) -> Result<i64, StoreError>;

    /// The id of the newest event, 0 when there is none.
    async fn latest_event_id(&self) -> Result<i64, StoreError>;

    /// Up to `limit` events with ids above `after`, oldest first.
    async fn list_events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Forgets the events older than `before_us` (microseconds since the epoch) and says how many
    /// it forgot.
    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError>;
}
