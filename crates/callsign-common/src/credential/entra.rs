//! The Entra credential form (docs/protocol.md §6): a [`CommunicationTokenCredential`] whose refresher
//! exchanges an Entra ID user token (from any azure_core [`TokenCredential`]) for a communication
//! token at the resource's exchange endpoint, chosen by the scopes' prefix.

use super::{CommunicationTokenCredential, CommunicationTokenRefreshOptions, CredentialError};
use crate::claims::AccessToken;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, Context, Method, Pipeline, Request, Url};
use std::sync::Arc;

/// Scopes for the Entra exchange (`/access/entra`, preview) start with this.
pub const ENTRA_CLIENTS_PREFIX: &str = "https://communication.azure.com/clients/";
/// Scopes for the Teams extension exchange (`/access/teamsExtension`, 2025-06-30) start with this.
pub const TEAMS_EXTENSION_PREFIX: &str = "https://auth.msft.communication.azure.com/";
/// The scope used when none is given.
pub const DEFAULT_ENTRA_SCOPE: &str = "https://communication.azure.com/clients/.default";

/// What [`CommunicationTokenCredential::from_entra`] needs.
pub struct EntraCommunicationTokenCredentialOptions {
    /// The Communication Services endpoint, e.g. `https://my-resource.communication.azure.com/`.
    pub resource_endpoint: String,
    /// Where the user's Entra ID tokens come from.
    pub credential: Arc<dyn TokenCredential>,
    /// Entra scopes, all with one of the two prefixes; empty means [`DEFAULT_ENTRA_SCOPE`].
    pub scopes: Vec<String>,
}

/// The exchange endpoint path and api-version for `scopes`, or why they are refused: every scope
/// must share one known prefix.
pub fn exchange_route(scopes: &[String]) -> Result<(&'static str, &'static str), CredentialError> {
    let all = |prefix: &str| scopes.iter().all(|s| s.starts_with(prefix));
    if scopes.is_empty() || all(ENTRA_CLIENTS_PREFIX) {
        Ok(("/access/entra/:exchangeAccessToken", "2025-03-02-preview"))
    } else if all(TEAMS_EXTENSION_PREFIX) {
        Ok(("/access/teamsExtension/:exchangeAccessToken", "2025-06-30"))
    } else {
        Err(CredentialError::InvalidArgument(format!(
            "scopes must all start with {ENTRA_CLIENTS_PREFIX} or all with {TEAMS_EXTENSION_PREFIX}"
        )))
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeResult {
    access_token: TokenWire,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenWire {
    token: String,
    expires_on: String,
}

/// Why an exchange failed (never holds a token).
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("the exchange request failed: {0}")]
    Transport(azure_core::Error),
    #[error("the exchange answered status {0}")]
    Status(u16),
    #[error("the exchange answer is not a token result: {0}")]
    Body(String),
}

impl CommunicationTokenCredential {
    /// A credential that exchanges the Entra ID tokens of `options.credential` for communication
    /// tokens, refreshing like the other forms. Scopes are checked now.
    pub fn from_entra(
        options: EntraCommunicationTokenCredentialOptions,
    ) -> Result<Self, CredentialError> {
        Self::from_entra_with_client_options(options, ClientOptions::default())
    }

    /// [`from_entra`](Self::from_entra) with azure_core client options (transport, retry: by
    /// default 5xx and 429 are retried).
    pub fn from_entra_with_client_options(
        options: EntraCommunicationTokenCredentialOptions,
        client_options: ClientOptions,
    ) -> Result<Self, CredentialError> {
        let scopes = if options.scopes.is_empty() {
            vec![DEFAULT_ENTRA_SCOPE.to_owned()]
        } else {
            options.scopes
        };
        let (path, api_version) = exchange_route(&scopes)?;
        let mut url: Url = options
            .resource_endpoint
            .parse()
            .map_err(|e| CredentialError::InvalidArgument(format!("resource_endpoint: {e}")))?;
        url.set_path(path);
        url.set_query(Some(&format!("api-version={api_version}")));
        let policy = BearerTokenAuthorizationPolicy::new(options.credential, scopes);
        let pipeline = Arc::new(Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            client_options,
            Vec::new(),
            vec![Arc::new(policy)],
            None,
        ));
        let refresher = move || {
            let (pipeline, url) = (pipeline.clone(), url.clone());
            async move { exchange(&pipeline, url).await }
        };
        Self::new(CommunicationTokenRefreshOptions::new(refresher))
    }
}

async fn exchange(pipeline: &Pipeline, url: Url) -> Result<AccessToken, ExchangeError> {
    let mut request = Request::new(url, Method::Post);
    request.insert_header("accept", "application/json");
    request.insert_header("content-type", "application/json");
    request.set_body(b"{}".to_vec());
    let response = pipeline
        .send(&Context::new(), &mut request, None)
        .await
        .map_err(ExchangeError::Transport)?;
    let status = u16::from(response.status());
    if !(200..300).contains(&status) {
        return Err(ExchangeError::Status(status));
    }
    let result: ExchangeResult = serde_json::from_slice(response.body().as_ref())
        .map_err(|e| ExchangeError::Body(e.to_string()))?;
    let expires_on = chrono::DateTime::parse_from_rfc3339(&result.access_token.expires_on)
        .map_err(|e| ExchangeError::Body(e.to_string()))?
        .with_timezone(&chrono::Utc);
    Ok(AccessToken {
        token: result.access_token.token,
        expires_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_route_by_prefix() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            exchange_route(&s(&[DEFAULT_ENTRA_SCOPE])).unwrap(),
            ("/access/entra/:exchangeAccessToken", "2025-03-02-preview")
        );
        assert_eq!(
            exchange_route(&s(&[
                "https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls"
            ]))
            .unwrap(),
            ("/access/teamsExtension/:exchangeAccessToken", "2025-06-30")
        );
        for bad in [
            &["https://graph.microsoft.com/.default"][..],
            &[
                DEFAULT_ENTRA_SCOPE,
                "https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls",
            ][..],
        ] {
            assert!(matches!(
                exchange_route(&s(bad)),
                Err(CredentialError::InvalidArgument(_))
            ));
        }
    }
}
