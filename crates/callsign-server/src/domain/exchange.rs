//! Exchanging a Teams user's Entra ID token for a communication token (docs/protocol.md §1, §3).

use super::ids::{teams_user, Guid};
use super::scope::{Scope, Scopes};
use super::tokens::{self, IssuedToken};
use super::{DomainError, IdentityService};
use crate::auth::EntraClaims;

/// Why a Teams extension or Entra exchange (the two that an assignment allows) was refused.
#[derive(Debug, thiserror::Error)]
pub enum AssignedExchangeError {
    /// The token lacks the scope or the ids this exchange needs.
    #[error("the token is not for this exchange")]
    NotForThisExchange,
    /// No assignment allows this principal with this client.
    #[error("no assignment allows this principal and client")]
    NotAssigned,
    /// The store failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// The tenant (`tid`) and object (`oid`) of a verified Entra token, when both are GUIDs: the
/// principal an assignment must allow.
pub(crate) fn principal_of(claims: &EntraClaims) -> Option<(Guid, Guid)> {
    Some((
        claims.tid.as_deref().and_then(Guid::parse)?,
        claims.oid.as_deref().and_then(Guid::parse)?,
    ))
}

/// Delegated scopes of which a Teams user token must carry one.
const TEAMS_SCOPES: [&str; 2] = ["Teams.ManageCalls", "Teams.ManageChats"];

/// Why a verified token cannot be exchanged, in the order the service checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TeamsExchangeError {
    /// The token carries none of the Teams scopes: it is not a Teams user token.
    #[error("the token has no Teams scope")]
    NotATeamsToken,
    /// `appId` is not a GUID.
    #[error("appId has an invalid format")]
    AppIdFormat,
    /// `userId` is not a GUID.
    #[error("userId has an invalid format")]
    UserIdFormat,
    /// The token was issued to another application.
    #[error("the token's application is not appId")]
    AppMismatch,
    /// The token is another user's.
    #[error("the token's user is not userId")]
    UserMismatch,
    /// The token names no user (no GUID-shaped `oid`).
    #[error("the token names no user")]
    NoUser,
}

/// The application and user a caller says the token is for (`appId`, `userId`; 2022-06-01 on).
#[derive(Debug, Clone, Copy)]
pub struct TeamsUserIds<'a> {
    /// The Entra application the token should have been issued to.
    pub app_id: &'a str,
    /// The object id of the user the token should be for.
    pub user_id: &'a str,
}

impl IdentityService {
    /// A communication token for the Teams user `8:orgid:<oid>` of a verified Entra token, expiring
    /// with it. With `ids` (2022-06-01 on), they must be well-formed and be the token's; the early
    /// previews take the token alone (docs/protocol.md §1.5).
    pub fn exchange_teams_user(
        &self,
        claims: &EntraClaims,
        ids: Option<TeamsUserIds<'_>>,
    ) -> Result<IssuedToken, TeamsExchangeError> {
        if !TEAMS_SCOPES.iter().any(|s| claims.has_scope(s)) {
            return Err(TeamsExchangeError::NotATeamsToken);
        }
        if let Some(ids) = ids {
            check_ids(claims, ids)?;
        }
        let oid = claims
            .oid
            .as_deref()
            .and_then(Guid::parse)
            .ok_or(TeamsExchangeError::NoUser)?;
        let scopes = Scopes::new([Scope::Chat, Scope::Voip]).expect("two scopes");
        Ok(self.mint_for_exchange(teams_user(&oid).raw_id(), &scopes, claims.exp))
    }

    /// A token for `raw_id`, the user of an exchanged Entra token, expiring with that token at
    /// `exp`: such users are no identity of the store, so none is made or checked.
    pub(crate) fn mint_for_exchange(&self, raw_id: &str, scopes: &Scopes, exp: i64) -> IssuedToken {
        let skype_id = raw_id
            .strip_prefix("8:")
            .expect("the raw ids of users start with 8:");
        tokens::mint_until(
            &self.keys().get(),
            skype_id,
            scopes,
            self.stamps().next(),
            exp,
        )
    }
}

/// The caller's `appId` and `userId`: GUIDs, then the token's application and user.
fn check_ids(claims: &EntraClaims, ids: TeamsUserIds<'_>) -> Result<(), TeamsExchangeError> {
    if Guid::parse(ids.app_id).is_none() {
        return Err(TeamsExchangeError::AppIdFormat);
    }
    if Guid::parse(ids.user_id).is_none() {
        return Err(TeamsExchangeError::UserIdFormat);
    }
    let same = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
    if !same(claims.client_id(), ids.app_id) {
        return Err(TeamsExchangeError::AppMismatch);
    }
    if !same(claims.oid.as_deref(), ids.user_id) {
        return Err(TeamsExchangeError::UserMismatch);
    }
    Ok(())
}
