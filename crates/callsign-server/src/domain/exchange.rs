//! Exchanging a Teams user's Entra ID token for a communication token (docs/protocol.md §1, §3).

use super::ids::is_guid_shaped;
use super::scope::{Scope, Scopes};
use super::tokens::{self, IssuedToken};
use super::IdentityService;
use crate::auth::EntraClaims;

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
            .filter(|oid| is_guid_shaped(oid))
            .ok_or(TeamsExchangeError::NoUser)?;
        let scopes = Scopes::new([Scope::Chat, Scope::Voip]).expect("two scopes");
        let keys = self.keys().get();
        Ok(tokens::mint_until(
            &keys,
            &format!("orgid:{}", oid.to_ascii_lowercase()),
            &scopes,
            self.stamps().next(),
            claims.exp,
        ))
    }
}

/// The caller's `appId` and `userId`: GUIDs, then the token's application and user.
fn check_ids(claims: &EntraClaims, ids: TeamsUserIds<'_>) -> Result<(), TeamsExchangeError> {
    if !is_guid_shaped(ids.app_id) {
        return Err(TeamsExchangeError::AppIdFormat);
    }
    if !is_guid_shaped(ids.user_id) {
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
