//! Access assignments as stored (who may exchange an Entra token here), and the contract every
//! backend keeps for them.

use super::{AuditRecord, StoreError};
pub use crate::domain::ids::PrincipalType;

/// A Teams extension assignment: the Entra principal `object_id` of `tenant_id` may exchange its
/// tokens, from any client (`client_ids` absent or empty) or only from the listed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamsExtensionAssignment {
    /// The Entra tenant.
    pub tenant_id: String,
    /// The user's or resource account's object id.
    pub object_id: String,
    /// `user` or `resourceAccount`.
    pub principal_type: PrincipalType,
    /// Client application ids allowed to exchange; `None` when not given.
    pub client_ids: Option<Vec<String>>,
}

/// An Entra assignment (preview): the principal `object_id` (a user, a group, or for
/// `principal_type` `tenant` the tenant itself) of `tenant_id` may exchange Entra tokens issued to
/// one of `client_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraAssignment {
    /// The user's, group's or tenant's object id; the key.
    pub object_id: String,
    /// The Entra tenant.
    pub tenant_id: String,
    /// `user`, `group` or `tenant`.
    pub principal_type: PrincipalType,
    /// Client application ids allowed to exchange.
    pub client_ids: Vec<String>,
}

/// Where assignments live. Every write is durable before it returns. Ids are stored lowercase.
///
/// As for identities ([`super::IdentityStore`]), each change has a form `…_with_events` that
/// appends audit events in the change's own transaction when something changed; backends
/// implement that form.
#[async_trait::async_trait]
pub trait AssignmentStore: Send + Sync + 'static {
    /// The assignment of (`tenant_id`, `object_id`).
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<Option<TeamsExtensionAssignment>, StoreError>;

    /// Creates or replaces an assignment; true when it was created.
    async fn put_teams_extension_assignment(
        &self,
        assignment: TeamsExtensionAssignment,
    ) -> Result<bool, StoreError> {
        self.put_teams_extension_assignment_with_events(assignment, Vec::new())
            .await
    }

    /// [`Self::put_teams_extension_assignment`], appending `events`.
    async fn put_teams_extension_assignment_with_events(
        &self,
        assignment: TeamsExtensionAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError>;

    /// Deletes an assignment; false when there was none.
    async fn delete_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<bool, StoreError> {
        self.delete_teams_extension_assignment_with_events(tenant_id, object_id, Vec::new())
            .await
    }

    /// [`Self::delete_teams_extension_assignment`], appending `events` when there was one.
    async fn delete_teams_extension_assignment_with_events(
        &self,
        tenant_id: String,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError>;

    /// The Entra assignment of `object_id`.
    async fn get_entra_assignment(
        &self,
        object_id: String,
    ) -> Result<Option<EntraAssignment>, StoreError>;

    /// The Entra assignments of any of `object_ids`.
    async fn find_entra_assignments(
        &self,
        object_ids: Vec<String>,
    ) -> Result<Vec<EntraAssignment>, StoreError>;

    /// At most `limit` Entra assignments ordered by object id, starting after `after`.
    async fn list_entra_assignments(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, StoreError>;

    /// Creates or replaces an Entra assignment; true when it was created.
    async fn put_entra_assignment(&self, assignment: EntraAssignment) -> Result<bool, StoreError> {
        self.put_entra_assignment_with_events(assignment, Vec::new())
            .await
    }

    /// [`Self::put_entra_assignment`], appending `events`.
    async fn put_entra_assignment_with_events(
        &self,
        assignment: EntraAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError>;

    /// Upserts `put` and removes `remove` (object ids) in one transaction.
    async fn update_entra_assignments(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
    ) -> Result<(), StoreError> {
        self.update_entra_assignments_with_events(put, remove, Vec::new())
            .await
    }

    /// [`Self::update_entra_assignments`], appending `events` in the same transaction.
    async fn update_entra_assignments_with_events(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
        events: Vec<AuditRecord>,
    ) -> Result<(), StoreError>;

    /// Deletes an Entra assignment; false when there was none.
    async fn delete_entra_assignment(&self, object_id: String) -> Result<bool, StoreError> {
        self.delete_entra_assignment_with_events(object_id, Vec::new())
            .await
    }

    /// [`Self::delete_entra_assignment`], appending `events` when there was one.
    async fn delete_entra_assignment_with_events(
        &self,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError>;
}
