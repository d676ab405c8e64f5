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
}

impl IdentityService {
    /// A communication token for the Teams user `8:orgid:<oid>` of a verified Entra token, expiring
    /// with it, when the caller's `app_id` and `user_id` are the token's.
    pub fn exchange_teams_user(
        &self,
        claims: &EntraClaims,
        app_id: &str,
        user_id: &str,
    ) -> Result<IssuedToken, TeamsExchangeError> {
        if !TEAMS_SCOPES.iter().any(|s| claims.has_scope(s)) {
            return Err(TeamsExchangeError::NotATeamsToken);
        }
        if !is_guid_shaped(app_id) {
            return Err(TeamsExchangeError::AppIdFormat);
        }
        if !is_guid_shaped(user_id) {
            return Err(TeamsExchangeError::UserIdFormat);
        }
        let same = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
        if !same(claims.client_id(), app_id) {
            return Err(TeamsExchangeError::AppMismatch);
        }
        let oid = claims.oid.as_deref().unwrap_or_default();
        if !same(Some(oid), user_id) {
            return Err(TeamsExchangeError::UserMismatch);
        }
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
