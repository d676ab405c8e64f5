//! The audit trail's durable log ([`crate::audit`]): events appended, read back in commit order
//! after a [`LogPosition`] (the sinks, the change feed), and forgotten once older than the
//! retention.
//!
//! The store knows an event only as its time, type, subject and JSON text, so that it does not
//! depend on the audit layer above it; the columns beside the JSON are what queries filter on
//! (on PostgreSQL, "who revoked user X" is one `SELECT` on `audit_events`).

use super::StoreError;

/// A place in the log, in the order events were committed: readers that continue after a
/// position never skip an event nor see one twice, on every backend.
///
/// A data dir and memory commit events one at a time, in id order: there `commit` is 0 and the
/// id is the position. A PostgreSQL cluster's nodes commit concurrently, so ids are taken in one
/// order and committed in another; there `commit` is the appending transaction's id (`xid8`),
/// and readers only see events whose transaction, and every older one, has finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    /// The appending transaction, where the backend orders by it; 0 elsewhere.
    pub commit: u64,
    /// The event's id.
    pub id: i64,
}

impl LogPosition {
    /// Before every event.
    pub const START: Self = Self { commit: 0, id: 0 };
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its id: increasing in the order ids are taken, never reused; 0 before it is appended.
    pub id: i64,
    /// Its appending transaction, where the backend orders by it ([`LogPosition::commit`]).
    pub commit: u64,
    /// When it happened, microseconds since the epoch.
    pub time_us: i64,
    /// Its stable type name (`identity.created`, …).
    pub event_type: String,
    /// The identity or object it is about, if any.
    pub subject: Option<String>,
    /// The whole event as JSON (its `id` field is not authoritative: [`AuditRecord::id`] is).
    pub json: String,
}

impl AuditRecord {
    /// The record with `details.<key>` set to `value` in its JSON: a fact only the store knows
    /// when it writes the change (the revocation stamp it stored, say).
    pub fn with_detail(mut self, key: &str, value: i64) -> Self {
        if let Ok(serde_json::Value::Object(mut event)) = serde_json::from_str(&self.json) {
            let details = event
                .entry("details")
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(details) = details {
                details.insert(key.to_owned(), value.into());
            }
            self.json = serde_json::Value::Object(event).to_string();
        }
        self
    }

    /// Where it is in the log.
    pub fn position(&self) -> LogPosition {
        LogPosition {
            commit: self.commit,
            id: self.id,
        }
    }
}

/// The audit log's storage.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends `record` (its `id` is ignored) durably and returns the id it was given.
    async fn append_event(&self, record: AuditRecord) -> Result<i64, StoreError>;

    /// The position of the newest event readers can see, [`LogPosition::START`] when none.
    async fn latest_position(&self) -> Result<LogPosition, StoreError>;

    /// The newest `limit` events, newest first (the console's activity page).
    async fn newest_events(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Up to `limit` events after `after`, in commit order.
    async fn events_after(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Forgets the events older than `before_us` (microseconds since the epoch) and says how many
    /// it forgot; [`Self::forgotten_through`] moves up to the last of them.
    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError>;

    /// The position of the newest event forgotten so far ([`LogPosition::START`] when none): a
    /// reader behind it has missed events.
    async fn forgotten_through(&self) -> Result<LogPosition, StoreError>;
}
