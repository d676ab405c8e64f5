//! Client and method options, in the Azure SDK for Rust shape.

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
pub struct CreateUserOptions<'a> {
    /// Tag the user with your own id; creating again with it returns the same user (preview only).
    pub custom_id: Option<String>,
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for `create_user_and_token`.
#[derive(Clone, Debug, Default)]
pub struct CreateUserAndTokenOptions<'a> {
    /// The token's lifetime (default 24 h).
    pub expires_in: Option<crate::TokenExpiry>,
    /// Tag the user with your own id (preview only).
    pub custom_id: Option<String>,
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for `get_token`.
#[derive(Clone, Debug, Default)]
pub struct GetTokenOptions<'a> {
    /// The token's lifetime (default 24 h).
    pub expires_in: Option<crate::TokenExpiry>,
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for operations that take nothing else (`get_user`, `revoke_tokens`, `delete_user`).
#[derive(Clone, Debug, Default)]
pub struct IdentityMethodOptions<'a> {
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for `list_entra_assignments`.
#[derive(Clone, Debug, Default)]
pub struct ListEntraAssignmentsOptions<'a> {
    /// Assignments per page the service is asked for (`maxpagesize`); every page is read either way.
    pub max_page_size: Option<u32>,
    /// Per-call context.
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for `list_users` (a callsign extension).
#[derive(Clone, Debug, Default)]
pub struct ListUsersOptions<'a> {
    /// Per-call context, and where to resume: a `continuation` taken from another pager's
    /// `into_continuation()` starts at that page instead of the first.
    pub method_options: PagerOptions<'a>,
    /// Users per page the server is asked for (`maxpagesize`, 1 to 1000; the server's default is
    /// 100); the pager reads every page either way.
    pub max_page_size: Option<u32>,
    /// Only the live user tagged with this custom id (at most one).
    pub custom_id: Option<String>,
}
