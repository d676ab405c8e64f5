//! The api-versions callsign speaks, and what each one has.

use super::error::ApiError;

/// An ACS Identity api-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// 2021-03-07, the first stable version.
    V2021_03_07,
    /// 2022-06-01: Teams user exchange with appId/userId.
    V2022_06_01,
    /// 2022-10-01: `expiresInMinutes`.
    V2022_10_01,
    /// 2023-10-01: join scopes; the official clients' default.
    V2023_10_01,
    /// 2025-06-30: Teams extension.
    V2025_06_30,
    /// 2025-03-02-preview: customId, GET identity, Entra exchange.
    V2025_03_02Preview,
}

impl ApiVersion {
    /// Every version, oldest first (the preview last, as the service lists it).
    pub const ALL: [ApiVersion; 6] = [
        ApiVersion::V2021_03_07,
        ApiVersion::V2022_06_01,
        ApiVersion::V2022_10_01,
        ApiVersion::V2023_10_01,
        ApiVersion::V2025_06_30,
        ApiVersion::V2025_03_02Preview,
    ];

    /// The query-string value.
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

    /// Reads the `api-version` query parameter: missing and unknown versions are 400s.
    pub fn from_query(query: Option<&str>) -> Result<ApiVersion, ApiError> {
        let value = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(ApiError::missing_api_version)?;
        ApiVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == value)
            .ok_or_else(|| ApiError::unsupported_api_version(&value))
    }

    /// Whether `expiresInMinutes` is read (2022-10-01 and later).
    pub fn has_token_lifetime(self) -> bool {
        !matches!(self, ApiVersion::V2021_03_07 | ApiVersion::V2022_06_01)
    }

    /// Whether the join scopes exist (2023-10-01 and later).
    pub fn has_join_scopes(self) -> bool {
        self.has_token_lifetime() && self != ApiVersion::V2022_10_01
    }

    /// Whether identities have `customId` and can be read (the preview).
    pub fn has_custom_ids(self) -> bool {
        self == ApiVersion::V2025_03_02Preview
    }

    /// The `api-supported-versions` header value for routes every version has.
    pub fn all_joined() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_fail_as_the_service_does() {
        assert_eq!(
            ApiVersion::from_query(Some("api-version=2023-10-01")).unwrap(),
            ApiVersion::V2023_10_01
        );
        assert_eq!(
            ApiVersion::from_query(Some("x=1&api-version=2025-03-02-preview")).unwrap(),
            ApiVersion::V2025_03_02Preview
        );
        assert_eq!(
            ApiVersion::from_query(None).unwrap_err().code,
            "MissingApiVersionParameter"
        );
        let err = ApiVersion::from_query(Some("api-version=2020-07-20-preview2")).unwrap_err();
        assert_eq!(err.code, "UnsupportedApiVersion");
        assert!(err.message.contains("'2020-07-20-preview2'"));
    }

    #[test]
    fn features_by_version() {
        use ApiVersion::*;
        let lifetimes: Vec<_> = ApiVersion::ALL
            .into_iter()
            .filter(|v| v.has_token_lifetime())
            .collect();
        assert_eq!(
            lifetimes,
            [V2022_10_01, V2023_10_01, V2025_06_30, V2025_03_02Preview]
        );
        let join: Vec<_> = ApiVersion::ALL
            .into_iter()
            .filter(|v| v.has_join_scopes())
            .collect();
        assert_eq!(join, [V2023_10_01, V2025_06_30, V2025_03_02Preview]);
    }
}
