//! Entra ID access (preview, docs/protocol.md §1, §3): assignments saying which Entra users, groups or
//! tenants may exchange their tokens from which client applications, and the exchange itself.

use super::ids::is_guid_shaped;
use super::scope::{Scope, Scopes};
use super::tokens::{self, IssuedToken};
use super::{DomainError, IdentityService};
use crate::auth::EntraClaims;
use crate::store::assignments::{AssignmentStore, EntraAssignment};
use std::sync::Arc;

/// Principal types an Entra assignment may name.
pub const ENTRA_PRINCIPAL_TYPES: [&str; 3] = ["user", "group", "tenant"];

/// Why an Entra exchange was refused.
#[derive(Debug, thiserror::Error)]
pub enum EntraAccessError {
    /// The token has no communication scope or lacks the ids it needs.
    #[error("the token is not an Entra communication token")]
    NotAnEntraToken,
    /// No assignment allows this principal with this client.
    #[error("no assignment allows this principal and client")]
    NotAssigned,
    /// The store failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// Entra assignments and the Entra exchange over an [`AssignmentStore`]. Ids are lowercased.
pub struct EntraAccessService {
    store: Arc<dyn AssignmentStore>,
}

/// The ACS scopes that the delegated Entra scopes (`scp`) grant, in a fixed order.
fn granted_scopes(claims: &EntraClaims) -> Option<Scopes> {
    let mut granted = Vec::new();
    if claims.has_scope("Chat") {
        granted.push(Scope::Chat);
    }
    if claims.has_scope("VoIP") {
        granted.push(Scope::Voip);
    }
    Scopes::new(granted)
}

fn lowercase(mut a: EntraAssignment) -> EntraAssignment {
    a.object_id = a.object_id.to_ascii_lowercase();
    a.tenant_id = a.tenant_id.to_ascii_lowercase();
    for id in &mut a.client_ids {
        *id = id.to_ascii_lowercase();
    }
    a
}

impl EntraAccessService {
    /// The service over `store`.
    pub fn new(store: Arc<dyn AssignmentStore>) -> Self {
        Self { store }
    }

    /// The assignment of `object_id`.
    pub async fn get(&self, object_id: &str) -> Result<Option<EntraAssignment>, DomainError> {
        Ok(self
            .store
            .get_entra_assignment(object_id.to_ascii_lowercase())
            .await?)
    }

    /// At most `limit` assignments after the object id `after`, ordered by object id.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, DomainError> {
        Ok(self
            .store
            .list_entra_assignments(after.map(str::to_ascii_lowercase), limit)
            .await?)
    }

    /// Creates or replaces an assignment; true when created.
    pub async fn put(&self, assignment: EntraAssignment) -> Result<bool, DomainError> {
        Ok(self
            .store
            .put_entra_assignment(lowercase(assignment))
            .await?)
    }

    /// Applies a merge-patch: upserts `put`, removes the object ids `remove`, atomically.
    pub async fn update(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
    ) -> Result<(), DomainError> {
        let put = put.into_iter().map(lowercase).collect();
        let remove = remove.iter().map(|id| id.to_ascii_lowercase()).collect();
        Ok(self.store.update_entra_assignments(put, remove).await?)
    }

    /// Deletes an assignment; false when there was none.
    pub async fn delete(&self, object_id: &str) -> Result<bool, DomainError> {
        Ok(self
            .store
            .delete_entra_assignment(object_id.to_ascii_lowercase())
            .await?)
    }

    /// Exchanges a verified Entra user token: an assignment of the user (`oid`), one of its
    /// `groups` or its tenant (`tid`), in that tenant, must list the token's client. The identity
    /// is `8:acs:<resourceId>_wf_<tenantId>_<objectId>` and the token expires with the Entra token.
    pub async fn exchange(
        &self,
        identities: &IdentityService,
        claims: &EntraClaims,
    ) -> Result<(String, IssuedToken), EntraAccessError> {
        let (Some(tid), Some(oid)) = (claims.tid.as_deref(), claims.oid.as_deref()) else {
            return Err(EntraAccessError::NotAnEntraToken);
        };
        if !is_guid_shaped(tid) || !is_guid_shaped(oid) {
            return Err(EntraAccessError::NotAnEntraToken);
        }
        let scopes = granted_scopes(claims).ok_or(EntraAccessError::NotAnEntraToken)?;
        let (tid, oid) = (tid.to_ascii_lowercase(), oid.to_ascii_lowercase());
        let client = claims
            .client_id()
            .ok_or(EntraAccessError::NotAssigned)?
            .to_ascii_lowercase();
        let mut principals = vec![oid.clone(), tid.clone()];
        principals.extend(claims.groups.iter().map(|g| g.to_ascii_lowercase()));
        let assignments = self
            .store
            .find_entra_assignments(principals)
            .await
            .map_err(DomainError::from)?;
        let allowed = assignments.iter().any(|a| {
            let principal_matches = match a.principal_type.as_str() {
                "user" => a.object_id == oid,
                "tenant" => a.object_id == tid,
                "group" => claims
                    .groups
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(&a.object_id)),
                _ => false,
            };
            principal_matches && a.tenant_id == tid && a.client_ids.contains(&client)
        });
        if !allowed {
            return Err(EntraAccessError::NotAssigned);
        }
        let keys = identities.keys().get();
        let skype_id = format!("acs:{}_wf_{}_{}", keys.resource_id, tid, oid);
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
