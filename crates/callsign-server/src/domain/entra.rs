//! Entra ID access (preview, docs/protocol.md §1, §3): assignments saying which Entra users, groups or
//! tenants may exchange their tokens from which client applications, and the exchange itself.

use super::exchange::{principal_of, AssignedExchangeError};
use super::ids::{entra_user, Guid, PrincipalType};
use super::scope::{Scope, Scopes};
use super::tokens::IssuedToken;
use super::{DomainError, IdentityService};
use crate::audit::PendingEvents;
use crate::auth::EntraClaims;
use crate::store::assignments::{AssignmentStore, EntraAssignment};
use std::sync::Arc;

/// Entra assignments and the Entra exchange over an [`AssignmentStore`]. Ids arrive as [`Guid`]s,
/// in canonical (lowercase) form.
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

impl EntraAccessService {
    /// The service over `store`.
    pub fn new(store: Arc<dyn AssignmentStore>) -> Self {
        Self { store }
    }

    /// The assignment of `object_id`.
    pub async fn get(&self, object_id: &Guid) -> Result<Option<EntraAssignment>, DomainError> {
        Ok(self
            .store
            .get_entra_assignment(object_id.to_string())
            .await?)
    }

    /// At most `limit` assignments after the object id `after`, ordered by object id.
    pub async fn list(
        &self,
        after: Option<&Guid>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, DomainError> {
        Ok(self
            .store
            .list_entra_assignments(after.map(Guid::to_string), limit)
            .await?)
    }

    /// Creates or replaces an assignment, storing `events` with it; true when created.
    pub async fn put(
        &self,
        assignment: EntraAssignment,
        events: &PendingEvents,
    ) -> Result<bool, DomainError> {
        Ok(self
            .store
            .put_entra_assignment_with_events(assignment, events.as_drafted())
            .await?)
    }

    /// Applies a merge-patch: upserts `put`, removes the object ids `remove`, and stores
    /// `events`, atomically.
    pub async fn update(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<Guid>,
        events: &PendingEvents,
    ) -> Result<(), DomainError> {
        let remove = remove.into_iter().map(Guid::into_string).collect();
        Ok(self
            .store
            .update_entra_assignments_with_events(put, remove, events.as_drafted())
            .await?)
    }

    /// Deletes an assignment, storing `events` with that; false when there was none.
    pub async fn delete(
        &self,
        object_id: &Guid,
        events: &PendingEvents,
    ) -> Result<bool, DomainError> {
        Ok(self
            .store
            .delete_entra_assignment_with_events(object_id.to_string(), events.as_drafted())
            .await?)
    }

    /// Exchanges a verified Entra user token: an assignment of the user (`oid`), one of its
    /// `groups` or its tenant (`tid`), in that tenant, must list the token's client. The identity
    /// is `8:acs:<resourceId>_wf_<tenantId>_<objectId>` and the token expires with the Entra token.
    pub async fn exchange(
        &self,
        identities: &IdentityService,
        claims: &EntraClaims,
    ) -> Result<(String, IssuedToken), AssignedExchangeError> {
        let (tid, oid) = principal_of(claims).ok_or(AssignedExchangeError::NotForThisExchange)?;
        let scopes = granted_scopes(claims).ok_or(AssignedExchangeError::NotForThisExchange)?;
        let client = claims
            .client_id()
            .ok_or(AssignedExchangeError::NotAssigned)?
            .to_ascii_lowercase();
        let groups: Vec<String> = claims
            .groups
            .iter()
            .map(|g| g.to_ascii_lowercase())
            .collect();
        let mut principals = vec![oid.to_string(), tid.to_string()];
        principals.extend(groups.iter().cloned());
        let assignments = self
            .store
            .find_entra_assignments(principals)
            .await
            .map_err(DomainError::from)?;
        let allowed = assignments.iter().any(|a| {
            let principal_matches = match &a.principal_type {
                PrincipalType::User => a.object_id == oid.as_str(),
                PrincipalType::Tenant => a.object_id == tid.as_str(),
                PrincipalType::Group => groups.contains(&a.object_id),
                PrincipalType::ResourceAccount | PrincipalType::Unknown(_) => false,
            };
            principal_matches && a.tenant_id == tid.as_str() && a.client_ids.contains(&client)
        });
        if !allowed {
            return Err(AssignedExchangeError::NotAssigned);
        }
        let user = entra_user(identities.keys().get().resource_id, &tid, &oid);
        let token = identities.mint_for_exchange(user.raw_id(), &scopes, claims.exp);
        Ok((user.raw_id().to_owned(), token))
    }
}
