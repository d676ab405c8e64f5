//! callsign's introspection extension: `POST /callsign/tokens/:introspect` (RFC 7662 style).

use super::body::JsonBody;
use super::error::ApiError;
use super::identities::json;
use crate::domain::{IdentityService, Introspection};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

#[derive(Serialize)]
struct IntrospectionBody {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// Why an inactive token is inactive (a callsign extension beside RFC 7662's `active`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// Reports whether the token in the body is valid now.
pub async fn introspect(service: &IdentityService, body: &JsonBody) -> Result<Response, ApiError> {
    let token = body
        .string("token")?
        .ok_or_else(|| ApiError::required("Token"))?;
    let body = match service.introspect(token).await? {
        Introspection::Active {
            sub,
            scopes,
            iat,
            exp,
            jti,
        } => IntrospectionBody {
            active: true,
            sub: Some(sub),
            scopes: Some(scopes),
            iat: Some(iat),
            exp: Some(exp),
            jti,
            reason: None,
        },
        Introspection::Inactive(reason) => IntrospectionBody {
            active: false,
            sub: None,
            scopes: None,
            iat: None,
            exp: None,
            jti: None,
            reason: Some(reason.as_str()),
        },
    };
    Ok(json(StatusCode::OK, &body))
}
