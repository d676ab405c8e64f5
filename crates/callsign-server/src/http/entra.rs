//! Handlers of the Entra routes (preview): `POST /access/entra/:exchangeAccessToken`, assignment
//! list (paged) and merge-patch update, and GET/PUT/DELETE of one assignment.

use super::assignment_fields::{client_ids, guid, principal_type};
use super::body::JsonBody;
use super::error::ApiError;
use super::exchange::{exchanged, refused, verify_bearer};
use super::identities::json;
use super::paging;
use crate::audit::PendingEvents;
use crate::auth::entra::ENTRA_CLIENTS_AUDIENCE;
use crate::auth::TrustedIssuers;
use crate::domain::entra::EntraAccessService;
use crate::domain::ids::{Guid, PrincipalType};
use crate::domain::IdentityService;
use crate::store::assignments::EntraAssignment;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use callsign_common::ApiVersion;
use serde::Serialize;

/// An assignment as the wire shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentBody {
    object_id: String,
    tenant_id: String,
    principal_type: String,
    client_ids: Vec<String>,
}

impl From<EntraAssignment> for AssignmentBody {
    fn from(a: EntraAssignment) -> Self {
        Self {
            object_id: a.object_id,
            tenant_id: a.tenant_id,
            principal_type: a.principal_type.as_str().to_owned(),
            client_ids: a.client_ids,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListBody {
    value: Vec<AssignmentBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

/// Reads an `EntraAssignmentCreateOrUpdateRequest` for `object_id`.
fn assignment_from(object_id: &str, body: &JsonBody) -> Result<EntraAssignment, ApiError> {
    let object_id = guid(object_id, "objectId")?;
    let tenant_id = match body.string("tenantId")? {
        None => return Err(ApiError::required("TenantId")),
        Some(t) => guid(t, "tenantId")?,
    };
    let principal_type = principal_type(body, &PrincipalType::ENTRA)?;
    let client_ids = client_ids(body)?.ok_or_else(|| ApiError::required("ClientIds"))?;
    // A tenant assignment names the tenant itself: the exchange looks it up by `tid`.
    if principal_type == PrincipalType::Tenant && object_id != tenant_id {
        return Err(ApiError::validation(
            "A tenant assignment's objectId must be its tenantId.",
            "objectId",
        ));
    }
    Ok(EntraAssignment {
        object_id: object_id.into_string(),
        tenant_id: tenant_id.into_string(),
        principal_type,
        client_ids,
    })
}

/// `GET /access/entra/assignments/{objectId}`
pub async fn get(access: &EntraAccessService, object_id: &str) -> Result<Response, ApiError> {
    let object_id = guid(object_id, "objectId")?;
    let assignment = access
        .get(&object_id)
        .await?
        .ok_or_else(ApiError::assignment_not_found)?;
    Ok(json(StatusCode::OK, &AssignmentBody::from(assignment)))
}

/// `PUT /access/entra/assignments/{objectId}`: 201 when created, 200 when replaced.
pub async fn put(
    access: &EntraAccessService,
    object_id: &str,
    body: &JsonBody,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    let assignment = assignment_from(object_id, body)?;
    let created = access.put(assignment.clone(), events).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &AssignmentBody::from(assignment)))
}

/// `DELETE /access/entra/assignments/{objectId}`
pub async fn delete(
    access: &EntraAccessService,
    object_id: &str,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    let object_id = guid(object_id, "objectId")?;
    if access.delete(&object_id, events).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::assignment_not_found())
    }
}

/// `GET /access/entra/assignments[?maxpagesize=n][&skipToken=objectId]`: a page ordered by object
/// id, with a `nextLink` to the next page when this one is full.
pub async fn list(
    access: &EntraAccessService,
    version: ApiVersion,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let mut page_size = paging::DEFAULT_PAGE_SIZE;
    let mut after = None;
    for (name, value) in query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
    {
        if name.eq_ignore_ascii_case("maxpagesize") {
            page_size = paging::page_size(value)?;
        } else if name.eq_ignore_ascii_case("skipToken") {
            after = Some(Guid::parse(value).ok_or_else(|| {
                ApiError::validation("Provided skipToken is not valid.", "skipToken")
            })?);
        }
    }
    let page = access.list(after.as_ref(), page_size).await?;
    let next_link = (page.len() == page_size as usize)
        .then(|| page.last())
        .flatten()
        .map(|last| {
            format!(
                "/access/entra/assignments?api-version={}&maxpagesize={page_size}&skipToken={}",
                version.as_str(),
                last.object_id
            )
        });
    Ok(json(
        StatusCode::OK,
        &ListBody {
            value: page.into_iter().map(AssignmentBody::from).collect(),
            next_link,
        },
    ))
}

/// `PATCH /access/entra/assignments` (merge-patch): each key is an object id, a value creates or
/// replaces its assignment and `null` removes it. Answers the assignments written.
pub async fn update(
    access: &EntraAccessService,
    body: &JsonBody,
    events: &PendingEvents,
) -> Result<Response, ApiError> {
    let mut put = Vec::new();
    let mut remove = Vec::new();
    for (object_id, value) in body.entries() {
        if value.is_null() {
            remove.push(guid(object_id, "objectId")?);
        } else {
            let entry = JsonBody::from_value(value).ok_or_else(|| {
                ApiError::validation(
                    format!("The assignment of '{object_id}' must be an object or null."),
                    object_id,
                )
            })?;
            put.push(assignment_from(object_id, &entry)?);
        }
    }
    access.update(put.clone(), remove, events).await?;
    Ok(json(
        StatusCode::OK,
        &ListBody {
            value: put.into_iter().map(AssignmentBody::from).collect(),
            next_link: None,
        },
    ))
}

/// `POST /access/entra/:exchangeAccessToken` with the user's Entra token as the bearer.
pub async fn exchange(
    access: &EntraAccessService,
    identities: &IdentityService,
    issuers: &TrustedIssuers,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let claims = verify_bearer(issuers, headers, ENTRA_CLIENTS_AUDIENCE).await?;
    Ok(match access.exchange(identities, &claims).await {
        Ok((id, token)) => exchanged(id, token, &claims),
        Err(e) => refused(e.into(), &claims),
    })
}
