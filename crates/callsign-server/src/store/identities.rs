//! Identities as stored, and the contract every backend keeps for them.

use super::{AuditRecord, StoreError};

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
    /// A new live identity created at `created_at_us`.
    pub fn new(id: String, custom_id: Option<String>, created_at_us: i64) -> Self {
        Self {
            id,
            custom_id,
            created_at_us,
            last_token_issued_at_us: None,
            revoked_before_us: None,
            deleted_at_us: None,
        }
    }

    /// Whether the identity still exists.
    pub fn is_live(&self) -> bool {
        self.deleted_at_us.is_none()
    }

    /// What the token path needs of it.
    pub fn token_state(&self) -> TokenState {
        match self.deleted_at_us {
            Some(_) => TokenState::Deleted,
            None => TokenState::Live {
                revoked_before_us: self.revoked_before_us,
            },
        }
    }
}

/// What issuing or checking a token needs to know of an identity that exists or existed: whether
/// it is live, and the revocation stamp its tokens must be later than.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// The identity exists; tokens issued at or before `revoked_before_us` are revoked.
    Live {
        /// The revocation stamp, if its tokens were ever revoked.
        revoked_before_us: Option<i64>,
    },
    /// The identity was deleted: it has no valid tokens and cannot get new ones.
    Deleted,
}

/// A token stamp of `at_us` moved, if need be, to just after `revoked_before_us`: a token issued
/// after a revocation is valid even when the revoking node's clock runs ahead.
pub fn after_revocation(at_us: i64, revoked_before_us: Option<i64>) -> i64 {
    at_us.max(revoked_before_us.map_or(i64::MIN, |cut| cut.saturating_add(1)))
}

/// Where identities live. Every write is durable before its future resolves.
///
/// Each change has a form `…_with_events` that appends audit events ([`AuditRecord`]) in the
/// change's own transaction, and only when something changed: a change is never stored without
/// its events, nor its events without it. Backends implement that form; the plain one is it with
/// no events.
#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Creates an identity, or, when a live identity already has `custom_id`, returns that one.
    async fn create_identity(&self, record: IdentityRecord) -> Result<IdentityRecord, StoreError> {
        self.create_identity_with_events(record, Vec::new()).await
    }

    /// [`Self::create_identity`], appending `events` when the identity is created (not when an
    /// existing one is returned).
    async fn create_identity_with_events(
        &self,
        record: IdentityRecord,
        events: Vec<AuditRecord>,
    ) -> Result<IdentityRecord, StoreError>;

    /// The identity with this id, live or deleted.
    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError>;

    /// The token state of the identity with this id, `None` when no identity ever had it: what
    /// the token path reads (issuing, introspection), so that a backend may serve it faster than
    /// the whole record. Exactly as fresh as [`Self::get_identity`]: a revoke or delete that has
    /// returned is seen.
    async fn token_state(&self, id: &str) -> Result<Option<TokenState>, StoreError> {
        Ok(self
            .get_identity(id.to_owned())
            .await?
            .map(|record| record.token_state()))
    }

    /// Notes that a token was issued (informational; may be written late).
    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError>;

    /// The issue stamp of a new token for the live identity `id`, recorded as its last token
    /// issue: `at_us`, or just after the identity's revocation stamp when that is later (the
    /// node that revoked may have a clock ahead of this one's); `None` when no live identity has
    /// `id`. What issuing a token asks of the store, in one call, so that a backend across a
    /// network (PostgreSQL) answers it in one round trip.
    async fn stamp_token(&self, id: &str, at_us: i64) -> Result<Option<i64>, StoreError> {
        let Some(TokenState::Live { revoked_before_us }) = self.token_state(id).await? else {
            return Ok(None);
        };
        let stamp = after_revocation(at_us, revoked_before_us);
        self.record_token_issued(id.to_owned(), stamp).await?;
        Ok(Some(stamp))
    }

    /// Revokes every token issued at or before `before_us`, and every token recorded as issued so
    /// far (another node's clock may run ahead of this one's); false when no live identity has `id`.
    async fn revoke_tokens(&self, id: String, before_us: i64) -> Result<bool, StoreError> {
        self.revoke_tokens_with_events(id, before_us, Vec::new())
            .await
    }

    /// [`Self::revoke_tokens`], appending `events` when the identity is live, each with the
    /// stamp stored as `details.revokedBeforeMicros` (tokens issued at or before it are revoked).
    async fn revoke_tokens_with_events(
        &self,
        id: String,
        before_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError>;

    /// Deletes the identity (and so revokes its tokens); false when no live identity has `id`.
    async fn delete_identity(&self, id: String, at_us: i64) -> Result<bool, StoreError> {
        self.delete_identity_with_events(id, at_us, Vec::new())
            .await
    }

    /// [`Self::delete_identity`], appending `events` when it was live, each with
    /// `details.deletedAtMicros`.
    async fn delete_identity_with_events(
        &self,
        id: String,
        at_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError>;

    /// At most `limit` live identities ordered by id, starting after `after` (keyset paging:
    /// identities created or deleted meanwhile never make a walk skip or repeat another), only
    /// the one with `custom_id` when given.
    async fn list_identities(
        &self,
        after: Option<String>,
        limit: u32,
        custom_id: Option<String>,
    ) -> Result<Vec<IdentityRecord>, StoreError>;

    /// At most `limit` identities that were revoked or deleted, live or not, ordered by id,
    /// starting after `after`: the revocation snapshot a follower of the change feed starts from.
    async fn list_revocations(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<IdentityRecord>, StoreError>;

    /// Removes every identity and every assignment, live or deleted, and the throttling counts
    /// (keys and the audit log stay): a clean slate for test suites sharing one server
    /// (`POST /callsign/:reset`).
    async fn reset(&self) -> Result<(), StoreError> {
        self.reset_with_events(Vec::new()).await
    }

    /// [`Self::reset`], then `events` appended (the audit log itself is kept).
    async fn reset_with_events(&self, events: Vec<AuditRecord>) -> Result<(), StoreError>;
}
