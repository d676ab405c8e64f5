//! Handlers of the identity operations (docs/protocol.md §1): request bodies in, ACS response shapes out.

use super::api_version::ApiVersion;
use super::body::{strings, Field, JsonBody};
use super::error::ApiError;
use crate::audit::PendingEvents;
use crate::domain::identities::CustomId;
use crate::domain::{IdentityService, IdentityView, IssuedToken, Minutes, Scope, Scopes};
use crate::metrics::TokenIssued;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use callsign_common::time_format;
use serde::Serialize;

/// An identity as the wire shows it; field order is the service's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_token_issued_at: Option<String>,
    id: String,
}

impl IdentityBody {
    fn new(view: IdentityView, version: ApiVersion) -> Self {
        // customId and lastTokenIssuedAt exist only in the preview's model.
        let extended = version.has_custom_ids();
        Self {
            custom_id: view.custom_id.filter(|_| extended),
            last_token_issued_at: view
                .last_token_issued_at
                .filter(|_| extended)
                .map(time_format::last_token_issued_at),
            id: view.id,
        }
    }
}

/// `{token, expiresOn}` as the wire shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenBody {
    token: String,
    expires_on: String,
}

impl From<IssuedToken> for TokenBody {
    fn from(t: IssuedToken) -> Self {
        Self {
            token: t.token,
            expires_on: time_format::expires_on(t.expires_on),
        }
    }
}

/// The 2020-07-20-preview2 token answer: `{id, token, expiresOn}`.
#[derive(Serialize)]
struct LegacyTokenBody {
    id: String,
    #[serde(flatten)]
    token: TokenBody,
}

/// The 2020-07-20-preview2 create answer: the identity, flat.
#[derive(Serialize)]
struct LegacyIdentityBody {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    identity: IdentityBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<TokenBody>,
}

/// A JSON success response with the service's content type.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("response bodies serialize");
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `POST /identities`; `events` are stored with a created identity.
pub async fn create(
    service: &IdentityService,
    version: ApiVersion,
    body: &JsonBody,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    if version.has_legacy_shapes() {
        return create_legacy(service, events).await;
    }
    let scopes = match body.string_array("createTokenWithScopes")? {
        Field::Absent => None,
        Field::Null => {
            return Err(ApiError::validation(
                "CreateTokenWithScopes value is missing.",
                "CreateTokenWithScopes",
            ))
        }
        Field::Value(v) => Some(scopes(strings(v), version, "createTokenWithScopes")?),
    };
    let lifetime = lifetime(service, body, version)?;
    let custom_id = if version.has_custom_ids() {
        custom_id(body)?
    } else {
        None
    };
    let (identity, token) = service
        .create(custom_id, scopes.map(|s| (s, lifetime)), events)
        .await?;
    let mut identity = IdentityBody::new(identity, version);
    // A create answers with `lastTokenIssuedAt` only for an identity with a customId: with a
    // token but no customId the service answers `{"identity":{"id"}}` (recordings X14-X16).
    if identity.custom_id.is_none() {
        identity.last_token_issued_at = None;
    }
    let alg = token.as_ref().map(|t| t.alg);
    let response = json(
        StatusCode::CREATED,
        &CreateBody {
            identity,
            access_token: token.map(TokenBody::from),
        },
    );
    Ok(match alg {
        Some(alg) => TokenIssued::mark(alg, response),
        None => response,
    })
}

/// `POST /identities` in 2020-07-20-preview2: the version defines no request fields, and answers
/// 200 with the identity flat, `{"id"}` (docs/protocol.md §1.3, X01).
async fn create_legacy(
    service: &IdentityService,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    let (identity, _) = service.create(None, None, events).await?;
    Ok(json(
        StatusCode::OK,
        &LegacyIdentityBody { id: identity.id },
    ))
}

/// `GET /identities/{id}` (preview)
pub async fn get(
    service: &IdentityService,
    version: ApiVersion,
    id: &str,
) -> Result<Response, ApiError> {
    let view = service.get(id).await?;
    Ok(json(StatusCode::OK, &IdentityBody::new(view, version)))
}

/// `POST /identities/{id}/:issueAccessToken`
pub async fn issue_token(
    service: &IdentityService,
    version: ApiVersion,
    id: &str,
    body: &JsonBody,
) -> Result<Response, ApiError> {
    let (scopes, lifetime) = token_request(service, body, version)?;
    let token = service.issue_token(id, &scopes, lifetime).await?;
    let alg = token.alg;
    Ok(TokenIssued::mark(
        alg,
        json(StatusCode::OK, &TokenBody::from(token)),
    ))
}

/// `POST /identities/{id}/token` (2020-07-20-preview2): the body is `{scopes}` as for
/// `:issueAccessToken`, the answer `{id, token, expiresOn}` (docs/protocol.md §1.3, X23).
pub async fn issue_token_legacy(
    service: &IdentityService,
    version: ApiVersion,
    id: &str,
    body: &JsonBody,
) -> Result<Response, ApiError> {
    let (scopes, lifetime) = token_request(service, body, version)?;
    let token = service.issue_token(id, &scopes, lifetime).await?;
    let id = service.parse(id)?.as_str().to_owned();
    let alg = token.alg;
    Ok(TokenIssued::mark(
        alg,
        json(
            StatusCode::OK,
            &LegacyTokenBody {
                id,
                token: TokenBody::from(token),
            },
        ),
    ))
}

/// The scopes and lifetime of a token request.
fn token_request(
    service: &IdentityService,
    body: &JsonBody,
    version: ApiVersion,
) -> Result<(Scopes, Minutes), ApiError> {
    let scopes = match body.string_array("scopes")? {
        Field::Absent | Field::Null => return Err(ApiError::required("Scopes")),
        Field::Value(v) => scopes(strings(v), version, "scopes")?,
    };
    Ok((scopes, lifetime(service, body, version)?))
}

/// `POST /identities/{id}/:revokeAccessTokens`; `events` are stored with the revocation.
pub async fn revoke(
    service: &IdentityService,
    id: &str,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    service.revoke(id, events).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /identities/{id}`; `events` are stored with the deletion.
pub async fn delete(
    service: &IdentityService,
    id: &str,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    service.delete(id, events).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Checks a scope list against what `version` knows.
fn scopes<'a>(
    names: impl Iterator<Item = &'a str>,
    version: ApiVersion,
    target: &str,
) -> Result<Scopes, ApiError> {
    let mut parsed = Vec::new();
    for name in names {
        match Scope::from_wire(name) {
            Some(scope) if scope.is_basic() || version.has_join_scopes() => parsed.push(scope),
            _ => {
                return Err(ApiError::validation(
                    format!("Invalid scopes - Scope '{name}' is not supported."),
                    target,
                ))
            }
        }
    }
    Scopes::new(parsed)
        .ok_or_else(|| ApiError::validation("Invalid scopes - Scopes field is required.", target))
}

/// `expiresInMinutes`, where the version has it; 1440 when absent. The shortest accepted is the
/// service's minimum: 60 as in ACS unless configured lower.
fn lifetime(
    service: &IdentityService,
    body: &JsonBody,
    version: ApiVersion,
) -> Result<Minutes, ApiError> {
    if !version.has_token_lifetime() {
        return Ok(Minutes::default());
    }
    let min = service.min_lifetime();
    match body.integer("expiresInMinutes")? {
        None => Ok(Minutes::default()),
        Some(n) => Minutes::at_least(n, min).ok_or_else(|| {
            ApiError::validation(
                format!(
                    "ExpiresInMinutes value {n} is invalid. Value must be within the [{}, {}] interval.",
                    min.get(),
                    Minutes::MAX.get()
                ),
                "ExpiresInMinutes",
            )
        }),
    }
}

fn custom_id(body: &JsonBody) -> Result<Option<CustomId>, ApiError> {
    match body.string("customId")? {
        None => Ok(None),
        Some(value) => CustomId::new(value).map(Some).ok_or_else(|| {
            ApiError::validation(
                format!(
                    "CustomId must be between 1 and {} characters long.",
                    CustomId::MAX_CHARS
                ),
                "customId",
            )
        }),
    }
}
