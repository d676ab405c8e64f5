//! A Rust client for the Communication Identity service — Azure Communication Services or a callsign
//! server: create users, issue and revoke their access tokens, delete them.
//!
//! ```no_run
//! use callsign_identity::{
//!     CommunicationIdentityClient, CommunicationIdentityClientGetTokenOptions, TokenExpiry, TokenScope,
//! };
//! use std::time::Duration;
//!
//! # async fn example() -> callsign_identity::Result<()> {
//! let client = CommunicationIdentityClient::from_connection_string(
//!     "endpoint=http://127.0.0.1:8080/;accesskey=c2VjcmV0",
//!     None,
//! )?;
//! let user = client.create_user(None).await?;
//! let options = CommunicationIdentityClientGetTokenOptions {
//!     expires_in: Some(TokenExpiry::new(Duration::from_secs(90 * 60))?),
//!     ..Default::default()
//! };
//! let token = client.get_token(&user, &[TokenScope::Chat, TokenScope::Voip], Some(options)).await?;
//! println!("{} expires at {}", user.id(), token.expires_on);
//! client.revoke_tokens(&user, None).await?;
//! client.delete_user(&user, None).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Shapes
//!
//! The client follows the Azure SDK for Rust: `CommunicationIdentityClient::new(endpoint,
//! credential, Option<CommunicationIdentityClientOptions>)` (or from a connection string, or an
//! access key), one `CommunicationIdentityClient<Method>Options` per method, lists as azure_core
//! [`Pager`](azure_core::http::Pager)s, `#[non_exhaustive]` models, service enums that keep
//! values they do not know (`UnknownValue`), one error type with status, code and message.
//!
//! Methods return their models rather than `azure_core::http::Response<T>`: the identity
//! service's answers carry nothing in their headers a caller needs (the request id is the one the
//! client sent, in `x-ms-client-request-id`), and the official SDKs of other languages return
//! the models too. Tokens never appear in `Debug` output ([`AccessToken`]'s is redacted).

/// The README's examples, compiled as doctests so that they cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod admin;
mod client;
mod entra_assignments;
mod error;
mod models;
mod options;
mod paging;

pub use callsign_common::identifier::CommunicationUserIdentifier;
pub use callsign_common::AccessToken;
pub use client::{CommunicationIdentityClient, ENTRA_SCOPE};
pub use entra_assignments::{
    EntraAssignment, EntraAssignmentPage, EntraAssignmentRequest, EntraPrincipalType,
};
pub use error::{IdentityError, Result};
pub use models::{
    ChangeEvent, CommunicationUserDetails, EventsPage, ListUsersPage, ListedUser,
    TeamsExtensionAssignment, TeamsExtensionAssignmentRequest, TeamsExtensionPrincipalType,
    TokenExpiry, TokenIntrospection, TokenScope,
};
#[allow(deprecated)]
pub use options::{
    ApiVersion, CommunicationIdentityClientCreateUserAndTokenOptions,
    CommunicationIdentityClientCreateUserOptions,
    CommunicationIdentityClientDeleteEntraAssignmentOptions,
    CommunicationIdentityClientDeleteTeamsExtensionAssignmentOptions,
    CommunicationIdentityClientDeleteUserOptions,
    CommunicationIdentityClientGetEntraAssignmentOptions,
    CommunicationIdentityClientGetTeamsExtensionAssignmentOptions,
    CommunicationIdentityClientGetTokenForTeamsUserOptions,
    CommunicationIdentityClientGetTokenOptions, CommunicationIdentityClientGetUserOptions,
    CommunicationIdentityClientIntrospectTokenOptions,
    CommunicationIdentityClientListEntraAssignmentsOptions,
    CommunicationIdentityClientListUsersOptions, CommunicationIdentityClientOptions,
    CommunicationIdentityClientReadEventsOptions, CommunicationIdentityClientResetOptions,
    CommunicationIdentityClientRevokeTokensOptions,
    CommunicationIdentityClientSetEntraAssignmentOptions,
    CommunicationIdentityClientSetTeamsExtensionAssignmentOptions,
    CommunicationIdentityClientUpdateEntraAssignmentsOptions, CreateUserAndTokenOptions,
    CreateUserOptions, GetTokenOptions, ListUsersOptions,
};
