//! Teams extension access (docs/protocol.md §1, §3): assignments saying which Entra principals may
//! exchange their tokens, and the exchange itself.

use super::exchange::{principal_of, AssignedExchangeError};
use super::ids::{teams_extension_user, Guid};
use super::scope::{Scope, Scopes};
use super::tokens::IssuedToken;
use super::{DomainError, IdentityService};
use crate::audit::PendingEvents;
use crate::auth::EntraClaims;
use crate::store::assignments::{AssignmentStore, TeamsExtensionAssignment};
use std::sync::Arc;

/// The delegated scope a Teams extension user token must carry.
const TEAMS_EXTENSION_SCOPE: &str = "TeamsExtension.ManageCalls";

/// Assignments and the Teams extension exchange over an [`AssignmentStore`].
pub struct AccessService {
    store: Arc<dyn AssignmentStore>,
}

impl AccessService {
    /// The service over `store`.
    pub fn new(store: Arc<dyn AssignmentStore>) -> Self {
        Self { store }
    }

    /// The assignment of (`tenant_id`, `object_id`).
    pub async fn get(
        &self,
        tenant_id: &Guid,
        object_id: &Guid,
    ) -> Result<Option<TeamsExtensionAssignment>, DomainError> {
        Ok(self
            .store
            .get_teams_extension_assignment(tenant_id.to_string(), object_id.to_string())
            .await?)
    }

    /// Creates or replaces an assignment (its ids [`Guid`]s, so in canonical form), storing
    /// `events` with it; true when created.
    pub async fn put(
        &self,
        assignment: TeamsExtensionAssignment,
        events: &PendingEvents,
    ) -> Result<bool, DomainError> {
        Ok(self
            .store
            .put_teams_extension_assignment_with_events(assignment, events.as_drafted())
            .await?)
    }

    /// Deletes an assignment, storing `events` with that; false when there was none.
    pub async fn delete(
        &self,
        tenant_id: &Guid,
        object_id: &Guid,
        events: &PendingEvents,
    ) -> Result<bool, DomainError> {
        Ok(self
            .store
            .delete_teams_extension_assignment_with_events(
                tenant_id.to_string(),
                object_id.to_string(),
                events.as_drafted(),
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
    ) -> Result<(String, IssuedToken), AssignedExchangeError> {
        let (tid, oid) = principal_of(claims).ok_or(AssignedExchangeError::NotForThisExchange)?;
        if !claims.has_scope(TEAMS_EXTENSION_SCOPE) {
            return Err(AssignedExchangeError::NotForThisExchange);
        }
        let assignment = self
            .get(&tid, &oid)
            .await?
            .ok_or(AssignedExchangeError::NotAssigned)?;
        let client_allowed = match assignment.client_ids.as_deref() {
            None | Some([]) => true,
            Some(ids) => claims
                .client_id()
                .is_some_and(|c| ids.iter().any(|id| id.eq_ignore_ascii_case(c))),
        };
        if !client_allowed {
            return Err(AssignedExchangeError::NotAssigned);
        }
        let user = teams_extension_user(identities.keys().get().resource_id, &tid, &oid);
        let scopes = Scopes::new([Scope::Voip]).expect("one scope");
        let token = identities.mint_for_exchange(user.raw_id(), &scopes, claims.exp);
        Ok((user.raw_id().to_owned(), token))
    }
}
