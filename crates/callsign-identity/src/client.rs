//! The `CommunicationIdentityClient`.

use crate::error::{IdentityError, Result};
use crate::models::{
    CommunicationUserDetails, CreateWire, IdentityWire, TeamsExtensionAssignment,
    TeamsExtensionAssignmentRequest, TokenIntrospection, TokenScope, TokenWire,
};
use crate::options::*;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientMethodOptions, Context, Method, Pipeline, RawResponse, Request, Url};
use callsign_common::identifier::CommunicationUserIdentifier;
use callsign_common::{AccessKey, AccessToken, ConnectionString, HmacAuthenticationPolicy};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The scope to request for Entra ID (AAD) authentication to Communication Services.
pub const ENTRA_SCOPE: &str = "https://communication.azure.com//.default";

/// Characters kept as they are in an id path segment; `:` is encoded, as the official clients do.
pub(crate) const ID_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A client for the Communication Identity service: users, their tokens, revocation.
///
/// Cheap to clone; one client serves any number of concurrent calls.
#[derive(Clone, Debug)]
pub struct CommunicationIdentityClient {
    endpoint: Url,
    api_version: ApiVersion,
    pipeline: Pipeline,
}

impl CommunicationIdentityClient {
    /// A client authenticating with an Entra ID [`TokenCredential`] (scope [`ENTRA_SCOPE`]).
    pub fn new(
        endpoint: &str,
        credential: Arc<dyn TokenCredential>,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> Result<Self> {
        let policy = BearerTokenAuthorizationPolicy::new(credential, [ENTRA_SCOPE]);
        Self::with_policy(endpoint, Arc::new(policy), options)
    }

    /// A client signing requests with an access key (HMAC-SHA256).
    pub fn with_access_key(
        endpoint: &str,
        key: AccessKey,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> Result<Self> {
        Self::with_policy(
            endpoint,
            Arc::new(HmacAuthenticationPolicy::new(key)),
            options,
        )
    }

    /// A client from a connection string (`endpoint=...;accesskey=...`).
    pub fn from_connection_string(
        connection_string: &str,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> Result<Self> {
        let parsed = ConnectionString::parse(connection_string)
            .map_err(|e| IdentityError::InvalidArgument(e.to_string()))?;
        let (endpoint, key) = parsed.into_parts();
        Self::with_access_key(endpoint.as_str(), key, options)
    }

    fn with_policy(
        endpoint: &str,
        auth: Arc<dyn Policy>,
        options: Option<CommunicationIdentityClientOptions>,
    ) -> Result<Self> {
        let options = options.unwrap_or_default();
        if options.api_version.is_early_preview() {
            return Err(IdentityError::InvalidArgument(format!(
                "api-version {} is an early preview this client does not speak; use 2021-03-07 or later",
                options.api_version
            )));
        }
        let mut endpoint: Url = endpoint
            .parse()
            .map_err(|e| IdentityError::InvalidArgument(format!("endpoint is not a URL: {e}")))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(IdentityError::InvalidArgument(
                "endpoint must be an http or https URL with a host".into(),
            ));
        }
        endpoint.set_path("");
        endpoint.set_query(None);
        let pipeline = Pipeline::new(
            // `azsdk-rust-callsign_identity/<version> (<rustc>; <os>; <arch>)`, as the Azure SDK
            // crates name themselves (crate names with `_`).
            Some(env!("CARGO_CRATE_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            options.client_options,
            Vec::new(),
            vec![auth],
            None,
        );
        Ok(Self {
            endpoint,
            api_version: options.api_version,
            pipeline,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The api-version in use.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        options: Option<CommunicationIdentityClientCreateUserOptions<'_>>,
    ) -> Result<CommunicationUserIdentifier> {
        let options = options.unwrap_or_default();
        let mut body = Map::new();
        self.put_custom_id(&mut body, options.custom_id)?;
        let created: CreateWire = self
            .send_json(
                Method::Post,
                "/identities",
                Some(body),
                &options.method_options.context,
            )
            .await?;
        Ok(CommunicationUserIdentifier::new(created.identity.id))
    }

    /// Creates a user and issues it a token in one call.
    pub async fn create_user_and_token(
        &self,
        scopes: &[TokenScope],
        options: Option<CommunicationIdentityClientCreateUserAndTokenOptions<'_>>,
    ) -> Result<(CommunicationUserIdentifier, AccessToken)> {
        let options = options.unwrap_or_default();
        // Field order as the official clients send it (recording X21).
        let mut body = Map::new();
        self.put_custom_id(&mut body, options.custom_id)?;
        body.insert("createTokenWithScopes".into(), json!(non_empty(scopes)?));
        self.put_expiry(&mut body, options.expires_in);
        let created: CreateWire = self
            .send_json(
                Method::Post,
                "/identities",
                Some(body),
                &options.method_options.context,
            )
            .await?;
        let token = created.access_token.ok_or_else(|| {
            IdentityError::Transport(azure_core::Error::with_message(
                azure_core::error::ErrorKind::DataConversion,
                "the service returned no access token",
            ))
        })?;
        Ok((
            CommunicationUserIdentifier::new(created.identity.id),
            token.into_access_token()?,
        ))
    }

    /// Issues a token for an existing user.
    pub async fn get_token(
        &self,
        user: &CommunicationUserIdentifier,
        scopes: &[TokenScope],
        options: Option<CommunicationIdentityClientGetTokenOptions<'_>>,
    ) -> Result<AccessToken> {
        let options = options.unwrap_or_default();
        let mut body = Map::new();
        body.insert("scopes".into(), json!(non_empty(scopes)?));
        self.put_expiry(&mut body, options.expires_in);
        let path = format!("{}/:issueAccessToken", identity_path(user));
        let token: TokenWire = self
            .send_json(
                Method::Post,
                &path,
                Some(body),
                &options.method_options.context,
            )
            .await?;
        token.into_access_token()
    }

    /// Exchanges a Teams user's Entra ID access token (audience
    /// `https://auth.msft.communication.azure.com`) for a communication token of that Teams user
    /// (`8:orgid:<user_id>`), which expires with the Entra token. `app_id` is the Entra application
    /// the token was issued to and `user_id` the user's object id; the service checks both against
    /// the token. Needs api-version 2022-06-01 or later.
    pub async fn get_token_for_teams_user(
        &self,
        token: &str,
        app_id: &str,
        user_id: &str,
        options: Option<CommunicationIdentityClientGetTokenForTeamsUserOptions<'_>>,
    ) -> Result<AccessToken> {
        if !self.api_version.has_teams_user_ids() {
            return Err(IdentityError::UnsupportedByApiVersion {
                operation: "get_token_for_teams_user",
                needed: ApiVersion::V2022_06_01.as_str(),
                configured: self.api_version.as_str(),
            });
        }
        for (name, value) in [("token", token), ("app_id", app_id), ("user_id", user_id)] {
            if value.is_empty() {
                return Err(IdentityError::InvalidArgument(format!(
                    "{name} must not be empty"
                )));
            }
        }
        let options = options.unwrap_or_default();
        let mut body = Map::new();
        body.insert("token".into(), json!(token));
        body.insert("appId".into(), json!(app_id));
        body.insert("userId".into(), json!(user_id));
        let token: TokenWire = self
            .send_json(
                Method::Post,
                "/teamsUser/:exchangeAccessToken",
                Some(body),
                &options.method_options.context,
            )
            .await?;
        token.into_access_token()
    }

    /// Reads a Teams extension assignment (api-version 2025-06-30 or the preview).
    pub async fn get_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
        options: Option<CommunicationIdentityClientGetTeamsExtensionAssignmentOptions<'_>>,
    ) -> Result<TeamsExtensionAssignment> {
        let path = self.assignment_path(tenant_id, object_id)?;
        self.call_json(
            Method::Get,
            &path,
            None,
            options.unwrap_or_default().method_options,
        )
        .await
    }

    /// Creates or replaces a Teams extension assignment (api-version 2025-06-30 or the preview).
    pub async fn set_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
        assignment: &TeamsExtensionAssignmentRequest,
        options: Option<CommunicationIdentityClientSetTeamsExtensionAssignmentOptions<'_>>,
    ) -> Result<TeamsExtensionAssignment> {
        let path = self.assignment_path(tenant_id, object_id)?;
        let body = match serde_json::to_value(assignment).expect("requests serialize") {
            Value::Object(map) => map,
            _ => unreachable!("a struct serializes to an object"),
        };
        self.call_json(
            Method::Put,
            &path,
            Some(body),
            options.unwrap_or_default().method_options,
        )
        .await
    }

    /// Deletes a Teams extension assignment.
    pub async fn delete_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
        options: Option<CommunicationIdentityClientDeleteTeamsExtensionAssignmentOptions<'_>>,
    ) -> Result<()> {
        let path = self.assignment_path(tenant_id, object_id)?;
        self.call_empty(
            Method::Delete,
            &path,
            options.unwrap_or_default().method_options,
        )
        .await
    }

    fn assignment_path(&self, tenant_id: &str, object_id: &str) -> Result<String> {
        if !self.api_version.has_teams_extension() {
            return Err(IdentityError::UnsupportedByApiVersion {
                operation: "Teams extension assignments",
                needed: ApiVersion::V2025_06_30.as_str(),
                configured: self.api_version.as_str(),
            });
        }
        Ok(format!(
            "/access/teamsExtension/tenants/{}/assignments/{}",
            utf8_percent_encode(tenant_id, ID_SEGMENT),
            utf8_percent_encode(object_id, ID_SEGMENT)
        ))
    }

    /// Reads a user's details (api-version 2025-03-02-preview).
    pub async fn get_user(
        &self,
        user: &CommunicationUserIdentifier,
        options: Option<CommunicationIdentityClientGetUserOptions<'_>>,
    ) -> Result<CommunicationUserDetails> {
        self.require_preview("get_user")?;
        let identity: IdentityWire = self
            .call_json(
                Method::Get,
                &identity_path(user),
                None,
                options.unwrap_or_default().method_options,
            )
            .await?;
        Ok(identity.into())
    }

    /// Revokes every token issued to the user so far.
    pub async fn revoke_tokens(
        &self,
        user: &CommunicationUserIdentifier,
        options: Option<CommunicationIdentityClientRevokeTokensOptions<'_>>,
    ) -> Result<()> {
        let path = format!("{}/:revokeAccessTokens", identity_path(user));
        self.call_empty(
            Method::Post,
            &path,
            options.unwrap_or_default().method_options,
        )
        .await
    }

    /// Deletes the user and revokes its tokens.
    pub async fn delete_user(
        &self,
        user: &CommunicationUserIdentifier,
        options: Option<CommunicationIdentityClientDeleteUserOptions<'_>>,
    ) -> Result<()> {
        self.call_empty(
            Method::Delete,
            &identity_path(user),
            options.unwrap_or_default().method_options,
        )
        .await
    }

    /// callsign extension: asks the server whether a token is valid now (signature, expiry,
    /// revocation, deletion). Azure Communication Services has no such operation.
    pub async fn introspect_token(
        &self,
        token: &str,
        options: Option<CommunicationIdentityClientIntrospectTokenOptions<'_>>,
    ) -> Result<TokenIntrospection> {
        let options = options.unwrap_or_default();
        let mut body = Map::new();
        body.insert("token".into(), Value::String(token.to_owned()));
        let mut url = self.endpoint.clone();
        url.set_path("/callsign/tokens/:introspect");
        let response = self
            .send_to(
                url,
                Method::Post,
                Some(body),
                &options.method_options.context,
            )
            .await?;
        response.body().json().map_err(IdentityError::Transport)
    }

    pub(crate) fn require_preview(&self, operation: &'static str) -> Result<()> {
        if self.api_version.has_custom_ids() {
            Ok(())
        } else {
            Err(IdentityError::UnsupportedByApiVersion {
                operation,
                needed: ApiVersion::V2025_03_02Preview.as_str(),
                configured: self.api_version.as_str(),
            })
        }
    }

    fn put_custom_id(
        &self,
        body: &mut Map<String, Value>,
        custom_id: Option<String>,
    ) -> Result<()> {
        if let Some(custom_id) = custom_id {
            self.require_preview("custom ids")?;
            let chars = custom_id.chars().count();
            if !(1..=256).contains(&chars) {
                return Err(IdentityError::InvalidArgument(
                    "custom_id must be 1 to 256 characters".into(),
                ));
            }
            body.insert("customId".into(), Value::String(custom_id));
        }
        Ok(())
    }

    fn put_expiry(&self, body: &mut Map<String, Value>, expires_in: Option<crate::TokenExpiry>) {
        if let (Some(expiry), true) = (expires_in, self.api_version.has_token_lifetime()) {
            body.insert("expiresInMinutes".into(), json!(expiry.minutes()));
        }
    }

    /// Sends with the per-call options of an operation that takes nothing else, and reads the
    /// answer's JSON.
    pub(crate) async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Map<String, Value>>,
        method_options: ClientMethodOptions<'_>,
    ) -> Result<T> {
        self.send_json(method, path, body, &method_options.context)
            .await
    }

    /// Sends with the per-call options of an operation that answers no body.
    pub(crate) async fn call_empty(
        &self,
        method: Method,
        path: &str,
        method_options: ClientMethodOptions<'_>,
    ) -> Result<()> {
        self.send(method, path, None, &method_options.context)
            .await
            .map(drop)
    }

    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Map<String, Value>>,
        context: &Context<'_>,
    ) -> Result<T> {
        let response = self.send(method, path, body, context).await?;
        response.body().json().map_err(IdentityError::Transport)
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Map<String, Value>>,
        context: &Context<'_>,
    ) -> Result<RawResponse> {
        let mut url = self.endpoint.clone();
        // The id is already percent-encoded; set_path keeps escapes as they are.
        url.set_path(path);
        url.query_pairs_mut()
            .append_pair("api-version", self.api_version.as_str());
        self.send_to(url, method, body, context).await
    }

    pub(crate) async fn send_to(
        &self,
        url: Url,
        method: Method,
        body: Option<Map<String, Value>>,
        context: &Context<'_>,
    ) -> Result<RawResponse> {
        Ok(self.send_raw(url, method, body, context).await?)
    }

    /// [`Self::send_to`] with azure_core's error, as a pager's callback answers it.
    pub(crate) async fn send_raw(
        &self,
        url: Url,
        method: Method,
        body: Option<Map<String, Value>>,
        context: &Context<'_>,
    ) -> azure_core::Result<RawResponse> {
        // The one PATCH of the API (Entra assignments) is a JSON merge patch.
        let content_type = if method == Method::Patch {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let mut request = Request::new(url, method);
        request.insert_header("accept", "application/json");
        if let Some(body) = body {
            request.insert_header("content-type", content_type);
            request.set_body(serde_json::to_vec(&body).expect("JSON maps serialize"));
        }
        self.pipeline.send(context, &mut request, None).await
    }
}

fn identity_path(user: &CommunicationUserIdentifier) -> String {
    format!("/identities/{}", utf8_percent_encode(user.id(), ID_SEGMENT))
}

fn non_empty(scopes: &[TokenScope]) -> Result<&[TokenScope]> {
    if scopes.is_empty() {
        Err(IdentityError::InvalidArgument(
            "at least one scope is required".into(),
        ))
    } else {
        Ok(scopes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids go into paths as the official clients send them: `:` and every other reserved
    /// character percent-encoded, so an id can never reach another route.
    #[test]
    fn ids_are_percent_encoded_in_paths() {
        let user = CommunicationUserIdentifier::new("8:acs:a-b_c.d~e");
        assert_eq!(identity_path(&user), "/identities/8%3Aacs%3Aa-b_c.d~e");
        let odd = CommunicationUserIdentifier::new("8:acs:x/../y?z#w %");
        assert_eq!(
            identity_path(&odd),
            "/identities/8%3Aacs%3Ax%2F..%2Fy%3Fz%23w%20%25"
        );
    }

    /// The server answers the early previews for older SDK releases; this client speaks the
    /// current shapes only and says so when it is built.
    #[test]
    fn early_previews_are_refused_when_the_client_is_built() {
        let build = |api_version| {
            CommunicationIdentityClient::from_connection_string(
                "endpoint=http://127.0.0.1:1/;accesskey=cHc=",
                Some(CommunicationIdentityClientOptions {
                    api_version,
                    ..Default::default()
                }),
            )
        };
        for version in ApiVersion::ALL {
            match build(version) {
                Ok(client) => assert!(ApiVersion::CURRENT.contains(&client.api_version())),
                Err(IdentityError::InvalidArgument(m)) => {
                    assert!(
                        version.is_early_preview() && m.contains(version.as_str()),
                        "{m}"
                    )
                }
                Err(e) => panic!("{version}: {e}"),
            }
        }
    }
}
