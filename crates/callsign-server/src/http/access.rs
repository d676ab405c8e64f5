//! Handlers of the Teams extension routes (2025-06-30 and the preview): assignment GET/PUT/DELETE
//! and `POST /access/teamsExtension/:exchangeAccessToken`.

use super::assignment_fields::{client_ids, guid, principal_type};
use super::body::JsonBody;
use super::error::ApiError;
use super::exchange::{exchanged, refused, verify_bearer};
use super::identities::json;
use crate::audit::PendingEvents;
use crate::auth::entra::TEAMS_AUDIENCE;
use crate::auth::TrustedIssuers;
use crate::domain::access::AccessService;
use crate::domain::ids::{Guid, PrincipalType};
use crate::domain::IdentityService;
use crate::store::assignments::TeamsExtensionAssignment;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An assignment as the wire shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentBody {
    object_id: String,
    tenant_id: String,
    principal_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ids: Option<Vec<String>>,
}

impl From<TeamsExtensionAssignment> for AssignmentBody {
    fn from(a: TeamsExtensionAssignment) -> Self {
        Self {
            object_id: a.object_id,
            tenant_id: a.tenant_id,
            principal_type: a.principal_type.as_str().to_owned(),
            client_ids: a.client_ids,
        }
    }
}

/// The path's tenant and object ids, checked in that order.
fn ids(tenant_id: &str, object_id: &str) -> Result<(Guid, Guid), ApiError> {
    Ok((guid(tenant_id, "tenantId")?, guid(object_id, "objectId")?))
}

/// `GET /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`
pub async fn get(
    access: &AccessService,
    tenant_id: &str,
    object_id: &str,
) -> Result<Response, ApiError> {
    let (tenant_id, object_id) = ids(tenant_id, object_id)?;
    let assignment = access
        .get(&tenant_id, &object_id)
        .await?
        .ok_or_else(ApiError::assignment_not_found)?;
    Ok(json(StatusCode::OK, &AssignmentBody::from(assignment)))
}

/// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`: 201 when created, 200
/// when replaced.
pub async fn put(
    access: &AccessService,
    tenant_id: &str,
    object_id: &str,
    body: &JsonBody,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    let (tenant_id, object_id) = ids(tenant_id, object_id)?;
    let assignment = TeamsExtensionAssignment {
        principal_type: principal_type(body, &PrincipalType::TEAMS_EXTENSION)?,
        client_ids: client_ids(body)?,
        tenant_id: tenant_id.into_string(),
        object_id: object_id.into_string(),
    };
    let created = access.put(assignment.clone(), events).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &AssignmentBody::from(assignment)))
}

/// `DELETE /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`
pub async fn delete(
    access: &AccessService,
    tenant_id: &str,
    object_id: &str,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    let (tenant_id, object_id) = ids(tenant_id, object_id)?;
    if access.delete(&tenant_id, &object_id, events).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::assignment_not_found())
    }
}

/// `POST /access/teamsExtension/:exchangeAccessToken` with the user's Entra token as the bearer.
pub async fn exchange(
    access: &AccessService,
    identities: &IdentityService,
    issuers: &TrustedIssuers,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let claims = verify_bearer(issuers, headers, TEAMS_AUDIENCE).await?;
    Ok(
        match access.exchange_teams_extension(identities, &claims).await {
            Ok((id, token)) => exchanged(id, token, &claims),
            Err(e) => refused(e.into(), &claims),
        },
    )
}
