//! Storage of identities behind one trait, so the domain never knows which database it talks to.

pub mod assignments;
pub mod postgres;
mod postgres_assignments;
pub mod sqlite;
pub mod sqlite_assignments;

pub use assignments::AssignmentStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use sqlite_assignments::SqliteAssignmentStore;

use std::future::Future;

/// An identity as stored. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The raw id.
    pub id: String,
    /// The caller's own id for it, if given at creation.
    pub custom_id: Option<String>,
    /// When it was created.
    pub created_at_us: i64,
    /// When a token was last issued for it.
    pub last_token_issued_at_us: Option<i64>,
    /// Tokens issued at or before this stamp are revoked.
    pub revoked_before_us: Option<i64>,
    /// When it was deleted; a deleted identity has no valid tokens and cannot get new ones.
    pub deleted_at_us: Option<i64>,
}

impl IdentityRecord {
    /// Whether the identity still exists.
    pub fn is_live(&self) -> bool {
        self.deleted_at_us.is_none()
    }
}

/// A store operation that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the operation; the caller may retry.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// Where identities live. Every write is durable before its future resolves.
pub trait Store: Send + Sync + 'static {
    /// Creates an identity, or, when a live identity already has `custom_id`, returns that one.
    fn create_identity(
        &self,
        record: IdentityRecord,
    ) -> impl Future<Output = Result<IdentityRecord, StoreError>> + Send;

    /// The identity with this id, live or deleted.
    fn get_identity(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<IdentityRecord>, StoreError>> + Send;

    /// Notes that a token was issued (informational; may be written late).
    fn record_token_issued(
        &self,
        id: String,
        at_us: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes every token issued at or before `before_us`, and every token recorded as issued so
    /// far (another node's clock may run ahead of this one's); false when no live identity has `id`.
    fn revoke_tokens(
        &self,
        id: String,
        before_us: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the identity (and so revokes its tokens); false when no live identity has `id`.
    fn delete_identity(
        &self,
        id: String,
        at_us: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
