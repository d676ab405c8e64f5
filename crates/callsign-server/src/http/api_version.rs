//! Reading the api-version of a request. The versions themselves and what each one has are
//! [`callsign_common::ApiVersion`], shared with the clients.

use super::error::ApiError;
pub use callsign_common::ApiVersion;

/// Reads the `api-version` query parameter: missing and unknown versions are 400s.
pub fn from_query(query: Option<&str>) -> Result<ApiVersion, ApiError> {
    let value = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(ApiError::missing_api_version)?;
    value
        .parse()
        .map_err(|_| ApiError::unsupported_api_version(&value))
}

/// The `api-supported-versions` header value: every version callsign speaks.
pub fn all_joined() -> String {
    ApiVersion::ALL.map(ApiVersion::as_str).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_fail_as_the_service_does() {
        assert_eq!(
            from_query(Some("api-version=2023-10-01")).unwrap(),
            ApiVersion::V2023_10_01
        );
        assert_eq!(
            from_query(Some("x=1&api-version=2025-03-02-preview")).unwrap(),
            ApiVersion::V2025_03_02Preview
        );
        assert_eq!(
            from_query(None).unwrap_err().code,
            "MissingApiVersionParameter"
        );
        let err = from_query(Some("api-version=2020-07-20-preview2")).unwrap_err();
        assert_eq!(err.code, "UnsupportedApiVersion");
        assert!(err.message.contains("'2020-07-20-preview2'"));
    }
}
