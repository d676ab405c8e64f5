//! Teams extension access (docs/protocol.md §1, §3): assignments saying which Entra principals may
//! exchange their tokens, and the exchange itself.

use super::ids::is_guid_shaped;
use super::scope::{Scope, Scopes};
use super::tokens::{self, IssuedToken};
use super::{DomainError, IdentityService};
use crate::auth::EntraClaims;
use crate::store::assignments::{AssignmentStore, TeamsExtensionAssignment};
use std::sync::Arc;

/// The delegated scope a Teams extension user token must carry.
const TEAMS_EXTENSION_SCOPE: &str = "TeamsExtension.ManageCalls";
/// Principal types an assignment may name.
pub const PRINCIPAL_TYPES: [&str; 2] = ["user", "resourceAccount"];

/// Why a Teams extension exchange was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The token lacks the Teams extension scope or the ids it needs.
    #[error("the token is not a Teams extension user token")]
    NotATeamsExtensionToken,
    /// No assignment allows this principal with this client.
    #[error("no assignment allows this principal and client")]
    NotAssigned,
    /// The store failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// Assignments and the Teams extension exchange over an [`AssignmentStore`].
pub struct AccessService {
    store: Arc<dyn AssignmentStore>,
}

impl AccessService {
    /// The service over `store`.
    pub fn new(store: Arc<dyn AssignmentStore>) -> Self {
        Self { store }
    }

    /// The assignment of (`tenant_id`, `object_id`), ids compared case-insensitively.
    pub async fn get(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> Result<Option<TeamsExtensionAssignment>, DomainError> {
        Ok(self
            .store
            .get_teams_extension_assignment(
                tenant_id.to_ascii_lowercase(),
                object_id.to_ascii_lowercase(),
            )
            .await?)
    }

    /// Creates or replaces an assignment; true when created.
    pub async fn put(&self, mut assignment: TeamsExtensionAssignment) -> Result<bool, DomainError> {
        assignment.tenant_id = assignment.tenant_id.to_ascii_lowercase();
        assignment.object_id = assignment.object_id.to_ascii_lowercase();
        Ok(self
            .store
            .put_teams_extension_assignment(assignment)
            .await?)
    }

    /// Deletes an assignment; false when there was none.
    pub async fn delete(&self, tenant_id: &str, object_id: &str) -> Result<bool, DomainError> {
        Ok(self
            .store
            .delete_teams_extension_assignment(
                tenant_id.to_ascii_lowercase(),
                object_id.to_ascii_lowercase(),
            )
            .await?)
    }

    /// Exchanges a verified Teams extension user token: the principal (`tid`, `oid`) needs an
    /// assignment whose client list is empty or holds the token's client. The identity is
    /// `8:acs:<resourceId>_<tenantId>_<objectId>` and the token expires with the Entra token.
    pub async fn exchange_teams_extension(
        &self,
        identities: &IdentityService,
        claims: &EntraClaims,
    ) -> Result<(String, IssuedToken), AccessError> {
        let (Some(tid), Some(oid)) = (claims.tid.as_deref(), claims.oid.as_deref()) else {
            return Err(AccessError::NotATeamsExtensionToken);
        };
        if !claims.has_scope(TEAMS_EXTENSION_SCOPE) || !is_guid_shaped(tid) || !is_guid_shaped(oid)
        {
            return Err(AccessError::NotATeamsExtensionToken);
        }
        let assignment = self.get(tid, oid).await?.ok_or(AccessError::NotAssigned)?;
        let client_allowed = match assignment.client_ids.as_deref() {
            None | Some([]) => true,
            Some(ids) => claims
                .client_id()
                .is_some_and(|c| ids.iter().any(|id| id.eq_ignore_ascii_case(c))),
        };
        if !client_allowed {
            return Err(AccessError::NotAssigned);
        }
        let keys = identities.keys().get();
        let skype_id = format!(
            "acs:{}_{}_{}",
            keys.resource_id, assignment.tenant_id, assignment.object_id
        );
        let scopes = Scopes::new([Scope::Voip]).expect("one scope");
        let token = tokens::mint_until(
            &keys,
            &skype_id,
            &scopes,
            identities.stamps().next(),
            claims.exp,
        );
        Ok((format!("8:{skype_id}"), token))
    }
}
