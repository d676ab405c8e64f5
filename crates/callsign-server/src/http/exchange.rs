//! Handler of the Teams user token exchange, `POST /teamsUser/:exchangeAccessToken`
//! (docs/protocol.md §1; error bodies and check order as recorded, X53–X76), and what the two
//! bearer exchanges (Teams extension, Entra) share: reading and verifying the user's bearer
//! token, and the `{identity, accessToken}` answer.

use super::api_version::ApiVersion;
use super::body::{Field, JsonBody};
use super::error::ApiError;
use super::identities::{json, TokenBody};
use crate::auth::entra::TEAMS_AUDIENCE;
use crate::auth::{EntraClaims, TrustedIssuers};
use crate::domain::exchange::AssignedExchangeError;
use crate::domain::tokens::IssuedToken;
use crate::domain::{IdentityService, TeamsExchangeError, TeamsUserIds};
use crate::metrics::TokenIssued;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
struct IdentityRef {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeBody {
    identity: IdentityRef,
    access_token: TokenBody,
}

/// The user's Entra token from `Authorization: Bearer`, verified for `audience`; anything wrong
/// with it is the service's 401 `InvalidAccessToken` (the reason is logged at debug level only).
pub async fn verify_bearer(
    issuers: &TrustedIssuers,
    headers: &HeaderMap,
    audience: &str,
) -> Result<EntraClaims, ApiError> {
    let token = super::bearer_token(headers).ok_or_else(ApiError::invalid_access_token)?;
    issuers.verify(token, audience).await.map_err(|e| {
        tracing::debug!(reason = %e, audience, "exchanged token rejected");
        ApiError::invalid_access_token()
    })
}

/// The refusals of the exchanges an assignment allows (Teams extension, Entra): a token that is
/// not for the exchange is `401 InvalidAccessToken`, an unassigned one `403 Forbidden`.
impl From<AssignedExchangeError> for ApiError {
    fn from(e: AssignedExchangeError) -> Self {
        match e {
            AssignedExchangeError::NotForThisExchange => ApiError::invalid_access_token(),
            AssignedExchangeError::NotAssigned => ApiError::not_assigned(),
            AssignedExchangeError::Domain(e) => e.into(),
        }
    }
}

/// The answer of a bearer exchange refused after its token verified: the error's, carrying for
/// the audit trail whose token it was.
pub fn refused(error: ApiError, claims: &EntraClaims) -> Response {
    let refused = super::audit::Refused {
        caller: super::audit::Granted::of(claims, None),
        code: error.code,
    };
    let client_error = error.status.is_client_error();
    let mut response = error.into_response();
    if client_error {
        response.extensions_mut().insert(refused);
    }
    response
}

/// The 200 answer of a bearer exchange: `{identity: {id}, accessToken: {token, expiresOn}}`,
/// carrying for the audit trail whose token was exchanged (and for the metrics its algorithm).
pub fn exchanged(id: String, token: IssuedToken, claims: &EntraClaims) -> Response {
    let granted = super::audit::Granted::of(claims, Some(id.clone()));
    let alg = token.alg;
    let mut response = json(
        StatusCode::OK,
        &ExchangeBody {
            identity: IdentityRef { id },
            access_token: TokenBody::from(token),
        },
    );
    response.extensions_mut().insert(granted);
    TokenIssued::mark(alg, response)
}

/// `POST /teamsUser/:exchangeAccessToken` with `{token, appId, userId}` (`{token}` alone before
/// 2022-06-01).
///
/// The service checks the body before the token (docs/protocol.md §1.5): that it has a token,
/// then that `appId` and `userId` are given; then the token itself, then the ids' format, then
/// that they are the token's.
pub async fn teams_user(
    service: &IdentityService,
    issuers: &TrustedIssuers,
    version: ApiVersion,
    body: &JsonBody,
) -> Result<Response, ApiError> {
    let token = match body.field("token") {
        Field::Absent | Field::Null => return Err(ApiError::missing_token()),
        Field::Value(_) => body.string("token")?.unwrap_or_default(),
    };
    // The early previews define no appId or userId: like any field a version lacks, ignored.
    let ids = if version.has_teams_user_ids() {
        Some(TeamsUserIds {
            app_id: required(body, "appId", "AppId")?,
            user_id: required(body, "userId", "UserId")?,
        })
    } else {
        None
    };
    let claims = issuers.verify(token, TEAMS_AUDIENCE).await.map_err(|e| {
        tracing::debug!(reason = %e, "Teams user token rejected");
        invalid_token(version)
    })?;
    let token = service
        .exchange_teams_user(&claims, ids)
        .map_err(|e| exchange_error(e, version))?;
    let alg = token.alg;
    let mut response = json(StatusCode::OK, &TokenBody::from(token));
    response
        .extensions_mut()
        .insert(super::audit::Granted::of(&claims, None));
    Ok(TokenIssued::mark(alg, response))
}

/// The 401 for a Teams token that is not valid: 2021-03-31-preview1 answers it with an empty body
/// (X53, X54), later versions with `InvalidAccessToken` (docs/protocol.md §1.5).
fn invalid_token(version: ApiVersion) -> ApiError {
    let error = ApiError::invalid_access_token();
    if version == ApiVersion::V2021_03_31Preview1 {
        error.without_body()
    } else {
        error
    }
}

fn exchange_error(e: TeamsExchangeError, version: ApiVersion) -> ApiError {
    match e {
        TeamsExchangeError::NotATeamsToken | TeamsExchangeError::NoUser => invalid_token(version),
        TeamsExchangeError::AppIdFormat => {
            ApiError::validation("Provided AppId has invalid format.", "appId")
        }
        TeamsExchangeError::UserIdFormat => {
            ApiError::validation("Provided UserId has invalid format.", "userId")
        }
        TeamsExchangeError::AppMismatch => {
            ApiError::validation("AAD application is not the expected one.", "appId")
        }
        TeamsExchangeError::UserMismatch => {
            ApiError::validation("Provided AAD token issued for unexpected user.", "userId")
        }
    }
}

/// A string field that must be present and non-empty (`""` counts as missing, X58).
fn required<'a>(body: &'a JsonBody, field: &str, property: &str) -> Result<&'a str, ApiError> {
    match body.string(field)? {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ApiError::required(property)),
    }
}
