//! Client and method options, in the Azure SDK for Rust shape: one
//! `CommunicationIdentityClient<Method>Options` per method, each `Default`, each carrying the
//! per-call `method_options` (context) besides what the method takes.

use azure_core::http::pager::PagerOptions;
use azure_core::http::{ClientMethodOptions, ClientOptions};

pub use callsign_common::ApiVersion;

/// Options for [`crate::CommunicationIdentityClient`].
#[derive(Clone, Debug, Default)]
pub struct CommunicationIdentityClientOptions {
    /// Transport, retry (by default exponential, honouring `Retry-After` on 429 and 503) and the rest.
    pub client_options: ClientOptions,
    /// The api-version to speak.
    pub api_version: ApiVersion,
}

/// Options for `create_user`.
#[derive(Clone, Debug, Default)]
pub struct CommunicationIdentityClientCreateUserOptions<'a> {
    /// Tag the user with your own id; creating again with it returns the same user (preview only).
    pub custom_id: Option<String>,
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for `create_user_and_token`.
#[derive(Clone, Debug, Default)]
pub struct CommunicationIdentityClientCreateUserAndTokenOptions<'a> {
    /// The token's lifetime (default 24 h).
    pub expires_in: Option<crate::TokenExpiry>,
    /// Tag the user with your own id (preview only).
    pub custom_id: Option<String>,
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for `get_token`.
#[derive(Clone, Debug, Default)]
pub struct CommunicationIdentityClientGetTokenOptions<'a> {
    /// The token's lifetime (default 24 h).
    pub expires_in: Option<crate::TokenExpiry>,
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for `list_entra_assignments`.
#[derive(Clone, Debug, Default)]
pub struct CommunicationIdentityClientListEntraAssignmentsOptions<'a> {
    /// Per-call context, and where to resume: a `continuation` taken from another pager's
    /// `into_continuation()` starts at that page instead of the first.
    pub method_options: PagerOptions<'a>,
    /// Assignments per page the service is asked for (`maxpagesize`); the pager reads every
    /// page either way.
    pub max_page_size: Option<u32>,
}

/// Options for `list_users` (a callsign extension).
#[derive(Clone, Debug, Default)]
pub struct CommunicationIdentityClientListUsersOptions<'a> {
    /// Per-call context, and where to resume: a `continuation` taken from another pager's
    /// `into_continuation()` starts at that page instead of the first.
    pub method_options: PagerOptions<'a>,
    /// Users per page the server is asked for (`maxpagesize`, 1 to 1000; the server's default is
    /// 100); the pager reads every page either way.
    pub max_page_size: Option<u32>,
    /// Only the live user tagged with this custom id (at most one).
    pub custom_id: Option<String>,
}

/// Options for `read_events` (a callsign extension).
#[derive(Clone, Debug, Default)]
pub struct CommunicationIdentityClientReadEventsOptions<'a> {
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
    /// Continue after this cursor (an event's, or a page's); `None` starts at the oldest event
    /// the server keeps.
    pub after: Option<String>,
    /// Events per page (`maxpagesize`, 1 to 1000; the server's default is 100).
    pub max_page_size: Option<u32>,
    /// When no event follows the cursor, wait this long (at most 60 s) for one before the server
    /// answers an empty page (a long poll).
    pub wait: Option<std::time::Duration>,
}

/// Declares the options of methods that take nothing but the per-call context.
macro_rules! context_only_options {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $name<'a> {
            /// Per-call context.
            pub method_options: ClientMethodOptions<'a>,
        }
    )*};
}

context_only_options! {
    /// Options for `get_user`.
    CommunicationIdentityClientGetUserOptions;
    /// Options for `revoke_tokens`.
    CommunicationIdentityClientRevokeTokensOptions;
    /// Options for `delete_user`.
    CommunicationIdentityClientDeleteUserOptions;
    /// Options for `get_token_for_teams_user`.
    CommunicationIdentityClientGetTokenForTeamsUserOptions;
    /// Options for `get_teams_extension_assignment`.
    CommunicationIdentityClientGetTeamsExtensionAssignmentOptions;
    /// Options for `set_teams_extension_assignment`.
    CommunicationIdentityClientSetTeamsExtensionAssignmentOptions;
    /// Options for `delete_teams_extension_assignment`.
    CommunicationIdentityClientDeleteTeamsExtensionAssignmentOptions;
    /// Options for `get_entra_assignment`.
    CommunicationIdentityClientGetEntraAssignmentOptions;
    /// Options for `set_entra_assignment`.
    CommunicationIdentityClientSetEntraAssignmentOptions;
    /// Options for `delete_entra_assignment`.
    CommunicationIdentityClientDeleteEntraAssignmentOptions;
    /// Options for `update_entra_assignments`.
    CommunicationIdentityClientUpdateEntraAssignmentsOptions;
    /// Options for `introspect_token` (a callsign extension).
    CommunicationIdentityClientIntrospectTokenOptions;
    /// Options for `reset` (a callsign extension).
    CommunicationIdentityClientResetOptions;
}

/// The former name of [`CommunicationIdentityClientCreateUserOptions`].
#[deprecated(note = "renamed CommunicationIdentityClientCreateUserOptions")]
pub type CreateUserOptions<'a> = CommunicationIdentityClientCreateUserOptions<'a>;
/// The former name of [`CommunicationIdentityClientCreateUserAndTokenOptions`].
#[deprecated(note = "renamed CommunicationIdentityClientCreateUserAndTokenOptions")]
pub type CreateUserAndTokenOptions<'a> = CommunicationIdentityClientCreateUserAndTokenOptions<'a>;
/// The former name of [`CommunicationIdentityClientGetTokenOptions`].
#[deprecated(note = "renamed CommunicationIdentityClientGetTokenOptions")]
pub type GetTokenOptions<'a> = CommunicationIdentityClientGetTokenOptions<'a>;
/// The former name of [`CommunicationIdentityClientListUsersOptions`].
#[deprecated(note = "renamed CommunicationIdentityClientListUsersOptions")]
pub type ListUsersOptions<'a> = CommunicationIdentityClientListUsersOptions<'a>;
