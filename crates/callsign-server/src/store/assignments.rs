//! Access assignments as stored (who may exchange an Entra token here), and the contract every
//! backend keeps for them.

use super::StoreError;
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
    ) -> Result<bool, StoreError>;

    /// Deletes an assignment; false when there was none.
    async fn delete_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
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
    async fn put_entra_assignment(&self, assignment: EntraAssignment) -> Result<bool, StoreError>;

    /// Upserts `put` and removes `remove` (object ids) in one transaction.
    async fn update_entra_assignments(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
    ) -> Result<(), StoreError>;

    /// Deletes an Entra assignment; false when there was none.
    async fn delete_entra_assignment(&self, object_id: String) -> Result<bool, StoreError>;
}
