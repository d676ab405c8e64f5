//! Client and method options, in the Azure SDK for Rust shape.

use azure_core::http::{ClientMethodOptions, ClientOptions};

/// The api-versions the client can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ApiVersion {
    /// 2021-03-07.
    V2021_03_07,
    /// 2022-06-01.
    V2022_06_01,
    /// 2022-10-01: token lifetimes.
    V2022_10_01,
    /// 2023-10-01: join scopes; the default, as in the official clients.
    #[default]
    V2023_10_01,
    /// 2025-06-30.
    V2025_06_30,
    /// 2025-03-02-preview: custom ids and `get_user`.
    V2025_03_02Preview,
}

impl ApiVersion {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2021_03_07 => "2021-03-07",
            ApiVersion::V2022_06_01 => "2022-06-01",
            ApiVersion::V2022_10_01 => "2022-10-01",
            ApiVersion::V2023_10_01 => "2023-10-01",
            ApiVersion::V2025_06_30 => "2025-06-30",
            ApiVersion::V2025_03_02Preview => "2025-03-02-preview",
        }
    }

    /// Every version.
    pub const ALL: [ApiVersion; 6] = [
        ApiVersion::V2021_03_07,
        ApiVersion::V2022_06_01,
        ApiVersion::V2022_10_01,
        ApiVersion::V2023_10_01,
        ApiVersion::V2025_06_30,
        ApiVersion::V2025_03_02Preview,
    ];

    /// Whether the version sends `expiresInMinutes`.
    pub(crate) fn has_token_lifetime(self) -> bool {
        !matches!(self, ApiVersion::V2021_03_07 | ApiVersion::V2022_06_01)
    }

    /// Whether the version has custom ids and `get_user`.
    pub(crate) fn is_preview(self) -> bool {
        self == ApiVersion::V2025_03_02Preview
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = crate::IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                crate::IdentityError::InvalidArgument(format!("unknown api-version '{s}'"))
            })
    }
}

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
