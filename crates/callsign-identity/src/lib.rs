//! A Rust client for the Communication Identity service — Azure Communication Services or a callsign
//! server: create users, issue and revoke their access tokens, delete them.
//!
//! ```no_run
//! use callsign_identity::{CommunicationIdentityClient, GetTokenOptions, TokenExpiry, TokenScope};
//! use std::time::Duration;
//!
//! # async fn example() -> callsign_identity::Result<()> {
//! let client = CommunicationIdentityClient::from_connection_string(
//!     "endpoint=http://127.0.0.1:8080/;accesskey=c2VjcmV0",
//!     None,
//! )?;
//! let user = client.create_user(None).await?;
//! let options = GetTokenOptions {
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

pub use callsign_common::identifier::CommunicationUserIdentifier;
pub use callsign_common::AccessToken;
pub use client::{CommunicationIdentityClient, ENTRA_SCOPE};
pub use entra_assignments::{EntraAssignment, EntraAssignmentRequest, EntraPrincipalType};
pub use error::{IdentityError, Result};
pub use models::{
    CommunicationUserDetails, ListUsersPage, ListedUser, TeamsExtensionAssignment, TokenExpiry,
    TokenIntrospection, TokenScope,
};
pub use options::{
    ApiVersion, CommunicationIdentityClientOptions, CreateUserAndTokenOptions, CreateUserOptions,
    GetTokenOptions, IdentityMethodOptions, ListEntraAssignmentsOptions, ListUsersOptions,
};
