//! Handlers of the Teams extension routes (2025-06-30 and the preview): assignment GET/PUT/DELETE
//! and `POST /access/teamsExtension/:exchangeAccessToken`.

use super::body::{strings, Field, JsonBody};
use super::error::ApiError;
use super::exchange::{exchanged, verify_bearer};
use super::identities::json;
use crate::auth::entra::TEAMS_AUDIENCE;
use crate::auth::TrustedIssuers;
use crate::domain::access::{AccessError, AccessService, PRINCIPAL_TYPES};
use crate::domain::ids::is_guid_shaped;
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
            principal_type: a.principal_type,
            client_ids: a.client_ids,
        }
    }
}

fn check_ids(tenant_id: &str, object_id: &str) -> Result<(), ApiError> {
    if !is_guid_shaped(tenant_id) {
        return Err(ApiError::validation(
            "Provided tenantId has invalid format.",
            "tenantId",
        ));
    }
    if !is_guid_shaped(object_id) {
        return Err(ApiError::validation(
            "Provided objectId has invalid format.",
            "objectId",
        ));
    }
    Ok(())
}

/// `GET /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`
pub async fn get(
    access: &AccessService,
    tenant_id: &str,
    object_id: &str,
) -> Result<Response, ApiError> {
    check_ids(tenant_id, object_id)?;
    let assignment = access
        .get(tenant_id, object_id)
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
) -> Result<Response, ApiError> {
    check_ids(tenant_id, object_id)?;
    let principal_type = match body.string("principalType")? {
        None => return Err(ApiError::required("PrincipalType")),
        Some(p) => PRINCIPAL_TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(p))
            .ok_or_else(|| {
                ApiError::validation(
                    format!("Principal type '{p}' is not supported."),
                    "principalType",
                )
            })?,
    };
    let client_ids = match body.string_array("clientIds")? {
        Field::Absent | Field::Null => None,
        Field::Value(v) => {
            let ids: Vec<String> = strings(v).map(str::to_ascii_lowercase).collect();
            if let Some(bad) = ids.iter().find(|id| !is_guid_shaped(id)) {
                return Err(ApiError::validation(
                    format!("Client id '{bad}' has invalid format."),
                    "clientIds",
                ));
            }
            Some(ids)
        }
    };
    let assignment = TeamsExtensionAssignment {
        tenant_id: tenant_id.to_ascii_lowercase(),
        object_id: object_id.to_ascii_lowercase(),
        principal_type: (*principal_type).to_owned(),
        client_ids,
    };
    let created = access.put(assignment.clone()).await?;
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
) -> Result<Response, ApiError> {
    check_ids(tenant_id, object_id)?;
    if access.delete(tenant_id, object_id).await? {
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
    let (id, token) = access
        .exchange_teams_extension(identities, &claims)
        .await
        .map_err(|e| match e {
            AccessError::NotATeamsExtensionToken => ApiError::invalid_access_token(),
            AccessError::NotAssigned => ApiError::not_assigned(),
            AccessError::Domain(e) => e.into(),
        })?;
    Ok(exchanged(id, token))
}
