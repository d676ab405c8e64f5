//! Entra assignments (api-version 2025-03-02-preview): which Entra users, groups or tenants may
//! exchange their Entra tokens at `/access/entra/:exchangeAccessToken`, and from which client
//! applications.

use crate::client::{CommunicationIdentityClient, ID_SEGMENT};
use crate::error::{IdentityError, Result};
use crate::options::*;
use crate::paging::Links;
use azure_core::http::{Method, Pager, StatusCode, Url};
use percent_encoding::utf8_percent_encode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Whom an Entra assignment is for. A value this client does not know (a newer service's) is kept
/// as [`UnknownValue`](Self::UnknownValue) and sent back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntraPrincipalType {
    /// One user (`oid` of the token).
    User,
    /// Every member of a group (`groups` of the token).
    Group,
    /// Every user of a tenant (`tid` of the token); the assignment's object id is the tenant id.
    Tenant,
    /// Any other value, verbatim.
    UnknownValue(String),
}

impl EntraPrincipalType {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Tenant => "tenant",
            Self::UnknownValue(value) => value,
        }
    }
}

crate::models::string_enum!(EntraPrincipalType, [User, Group, Tenant]);

/// An Entra assignment as the service returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EntraAssignment {
    /// The user, group or tenant.
    pub object_id: String,
    /// The Entra tenant.
    pub tenant_id: String,
    /// What `object_id` names.
    pub principal_type: EntraPrincipalType,
    /// Client application ids whose tokens may be exchanged.
    pub client_ids: Vec<String>,
}

/// What to create or replace for one object id (`set_entra_assignment`,
/// `update_entra_assignments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EntraAssignmentRequest {
    /// The Entra tenant.
    pub tenant_id: String,
    /// What the object id names.
    pub principal_type: EntraPrincipalType,
    /// Client application ids whose tokens may be exchanged.
    pub client_ids: Vec<String>,
}

impl EntraAssignmentRequest {
    /// An assignment of `principal_type` in `tenant_id` for the client applications `client_ids`.
    pub fn new(
        tenant_id: impl Into<String>,
        principal_type: EntraPrincipalType,
        client_ids: Vec<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            principal_type,
            client_ids,
        }
    }
}

/// One page of `list_entra_assignments`: what the pager's items come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EntraAssignmentPage {
    /// The assignments of the page, ordered by object id.
    pub value: Vec<EntraAssignment>,
    /// Where the next page is, while more may follow.
    #[serde(default)]
    pub next_link: Option<String>,
}

crate::paging::value_page!(EntraAssignmentPage, EntraAssignment);

impl CommunicationIdentityClient {
    /// Every Entra assignment, as an azure_core [`Pager`] that follows the service's `nextLink`
    /// page by page while it is polled (nothing is sent before); items are
    /// `azure_core::Result<EntraAssignment>` (`IdentityError::from` gives this crate's error).
    pub fn list_entra_assignments(
        &self,
        options: Option<CommunicationIdentityClientListEntraAssignmentsOptions<'_>>,
    ) -> Result<Pager<EntraAssignmentPage>> {
        self.require_preview("Entra assignments")?;
        let options = options.unwrap_or_default();
        let mut first = self.on_endpoint("/access/entra/assignments")?;
        if let Some(size) = options.max_page_size {
            first
                .query_pairs_mut()
                .append_pair("maxpagesize", &size.to_string());
        }
        Ok(self.pager(first, Links::WithApiVersion, options.method_options))
    }

    /// Reads the Entra assignment of a user, group or tenant.
    pub async fn get_entra_assignment(
        &self,
        object_id: &str,
        options: Option<CommunicationIdentityClientGetEntraAssignmentOptions<'_>>,
    ) -> Result<EntraAssignment> {
        let path = self.entra_assignment_path(object_id)?;
        self.call_json(
            Method::Get,
            &path,
            None,
            options.unwrap_or_default().method_options,
        )
        .await
    }

    /// Creates or replaces the Entra assignment of a user, group or tenant.
    pub async fn set_entra_assignment(
        &self,
        object_id: &str,
        assignment: &EntraAssignmentRequest,
        options: Option<CommunicationIdentityClientSetEntraAssignmentOptions<'_>>,
    ) -> Result<EntraAssignment> {
        let path = self.entra_assignment_path(object_id)?;
        self.call_json(
            Method::Put,
            &path,
            Some(object(assignment)),
            options.unwrap_or_default().method_options,
        )
        .await
    }

    /// Deletes the Entra assignment of a user, group or tenant.
    pub async fn delete_entra_assignment(
        &self,
        object_id: &str,
        options: Option<CommunicationIdentityClientDeleteEntraAssignmentOptions<'_>>,
    ) -> Result<()> {
        let path = self.entra_assignment_path(object_id)?;
        self.call_empty(
            Method::Delete,
            &path,
            options.unwrap_or_default().method_options,
        )
        .await
    }

    /// Changes many assignments at once (a JSON merge patch): `Some` creates or replaces the
    /// assignment of its object id, `None` removes it. Answers the assignments written (nothing
    /// when the service answers 204).
    pub async fn update_entra_assignments(
        &self,
        changes: &[(String, Option<EntraAssignmentRequest>)],
        options: Option<CommunicationIdentityClientUpdateEntraAssignmentsOptions<'_>>,
    ) -> Result<Vec<EntraAssignment>> {
        self.require_preview("Entra assignments")?;
        let options = options.unwrap_or_default();
        let body: Map<String, Value> = changes
            .iter()
            .map(|(object_id, change)| {
                let value = change
                    .as_ref()
                    .map_or(Value::Null, |c| Value::Object(object(c)));
                (object_id.clone(), value)
            })
            .collect();
        let response = self
            .send(
                Method::Patch,
                "/access/entra/assignments",
                Some(body),
                &options.method_options.context,
            )
            .await?;
        if response.status() == StatusCode::NoContent {
            return Ok(Vec::new());
        }
        let page: EntraAssignmentPage = response.body().json().map_err(IdentityError::Transport)?;
        Ok(page.value)
    }

    fn entra_assignment_path(&self, object_id: &str) -> Result<String> {
        self.require_preview("Entra assignments")?;
        Ok(format!(
            "/access/entra/assignments/{}",
            utf8_percent_encode(object_id, ID_SEGMENT)
        ))
    }

    /// A page's URL, from a path (the first page; callsign's `nextLink`) or a whole URL (the
    /// service may answer one), with the api-version. It must stay on this client's endpoint: the
    /// request is signed, and a signature is for the resource only.
    pub(crate) fn on_endpoint(&self, next_link: &str) -> Result<Url> {
        let mut url = self.on_endpoint_as_is(next_link)?;
        if !url.query_pairs().any(|(name, _)| name == "api-version") {
            url.query_pairs_mut()
                .append_pair("api-version", self.api_version().as_str());
        }
        Ok(url)
    }

    /// [`Self::on_endpoint`] without adding an api-version, for callsign's own routes (which take
    /// none): a path or a whole URL, refused unless it stays on this client's endpoint.
    pub(crate) fn on_endpoint_as_is(&self, next_link: &str) -> Result<Url> {
        let url = self.endpoint().join(next_link).map_err(|e| {
            IdentityError::InvalidArgument(format!("the service's nextLink is not a URL: {e}"))
        })?;
        if url.origin() != self.endpoint().origin() {
            return Err(IdentityError::InvalidArgument(
                "the service's nextLink leads to another host".into(),
            ));
        }
        Ok(url)
    }
}

fn object(request: &EntraAssignmentRequest) -> Map<String, Value> {
    match serde_json::to_value(request).expect("assignments serialize") {
        Value::Object(map) => map,
        _ => unreachable!("a struct serializes to an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiVersion, CommunicationIdentityClientOptions};
    use callsign_common::AccessKey;

    fn client() -> CommunicationIdentityClient {
        CommunicationIdentityClient::with_access_key(
            "https://res.example.com/",
            AccessKey::from_bytes(vec![1; 32]),
            Some(CommunicationIdentityClientOptions {
                api_version: ApiVersion::V2025_03_02Preview,
                ..Default::default()
            }),
        )
        .unwrap()
    }

    #[test]
    fn next_links_stay_on_the_endpoint() {
        let client = client();
        let relative = client
            .on_endpoint("/access/entra/assignments?api-version=2025-03-02-preview&skipToken=x")
            .unwrap();
        assert_eq!(
            relative.as_str(),
            "https://res.example.com/access/entra/assignments?api-version=2025-03-02-preview&skipToken=x"
        );
        let absolute = client
            .on_endpoint("https://res.example.com/access/entra/assignments?skipToken=y")
            .unwrap();
        assert_eq!(
            absolute.as_str(),
            "https://res.example.com/access/entra/assignments?skipToken=y&api-version=2025-03-02-preview"
        );
        for elsewhere in [
            "https://evil.example/access/entra/assignments",
            "http://res.example.com/access/entra/assignments",
            "https://res.example.com:8443/access/entra/assignments",
        ] {
            assert!(client.on_endpoint(elsewhere).is_err(), "{elsewhere}");
        }
    }

    #[test]
    fn requests_have_the_wire_shape() {
        let request = EntraAssignmentRequest {
            tenant_id: "t".into(),
            principal_type: EntraPrincipalType::Group,
            client_ids: vec!["c".into()],
        };
        assert_eq!(
            Value::Object(object(&request)),
            serde_json::json!({"tenantId": "t", "principalType": "group", "clientIds": ["c"]})
        );
    }
}
